// A recording played in the browser through a signed streaming link (SPEC R4 "play in the
// browser", "streaming link"), in Debian's headless Chromium: no account, no Bearer token; the
// <video> loads the MP4 from the link, plays (its clock advances and frames are decoded),
// seeks to the middle, which takes byte-range requests, and plays on from there.
// The page is a blank one on the server's own origin (the join page's address, its content
// replaced), so the consoles' Content-Security-Policy (media-src 'self') applies as it would.
// Usage: node playback.mjs BASE_URL LINK SECONDS WIDTHxHEIGHT PASSWORD   (run by
// tests/server/recordings_http/playback.rs with an MP4 the server exported; the password is not used)

import { launch } from './harness.mjs';

const [base, link, seconds, size] = process.argv.slice(2);
const duration = Number(seconds);
const [width, height] = size.split('x').map(Number);
const middle = Math.round(duration * 5) / 10;
const failures = [];
const results = {};
const check = (ok, what) => { if (!ok) failures.push(what); };

const browser = await launch();
try {
  const page = await (await browser.newContext()).newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.error('[page]', m.text()); });
  const statuses = [];
  page.on('response', (r) => {
    if (r.url().startsWith(link.split('?')[0])) statuses.push(r.status());
  });
  await page.goto(`${base}/join`);
  await page.setContent('<!doctype html><title>Playback</title><main></main>');

  const loaded = await page.evaluate((src) => new Promise((resolve) => {
    const v = document.createElement('video');
    v.muted = true;
    v.preload = 'auto';
    v.setAttribute('aria-label', 'Recording');
    const timer = setTimeout(() => resolve({ timeout: true, readyState: v.readyState, error: v.error && v.error.code }), 20000);
    v.addEventListener('loadedmetadata', () => { clearTimeout(timer); resolve({ duration: v.duration, width: v.videoWidth, height: v.videoHeight }); });
    v.addEventListener('error', () => { clearTimeout(timer); resolve({ error: v.error && v.error.code, message: v.error && v.error.message }); });
    v.src = src;
    document.querySelector('main').append(v);
  }), link);
  results.metadata = loaded;
  check(!loaded.error && !loaded.timeout, `the video loads its metadata: ${JSON.stringify(loaded)}`);
  check(Math.abs((loaded.duration || 0) - duration) < 0.2, `the video lasts about ${duration} s: ${loaded.duration}`);
  check(loaded.width === width && loaded.height === height, `the picture is ${size}: ${loaded.width}x${loaded.height}`);

  const played = await page.evaluate(() => new Promise((resolve) => {
    const v = document.querySelector('video');
    const timer = setTimeout(() => resolve({ timeout: true, currentTime: v.currentTime, error: v.error && v.error.code }), 20000);
    const tick = () => {
      if (v.currentTime > 0.5) { clearTimeout(timer); resolve({ currentTime: v.currentTime, frames: v.getVideoPlaybackQuality().totalVideoFrames }); } else setTimeout(tick, 50);
    };
    v.play().then(tick, (e) => { clearTimeout(timer); resolve({ playError: String(e) }); });
  }));
  results.played = played;
  check(played.currentTime > 0.5, `the video plays past 0.5 s: ${JSON.stringify(played)}`);
  check(played.frames > 0, `the video shows frames: ${JSON.stringify(played)}`);

  const seeked = await page.evaluate((to) => new Promise((resolve) => {
    const v = document.querySelector('video');
    v.pause();
    const timer = setTimeout(() => resolve({ timeout: true, currentTime: v.currentTime }), 20000);
    v.addEventListener('seeked', () => { clearTimeout(timer); resolve({ currentTime: v.currentTime }); }, { once: true });
    v.currentTime = to;
  }), middle);
  results.seeked = seeked;
  check(!seeked.timeout && Math.abs(seeked.currentTime - middle) < 0.3, `the video seeks to ${middle} s: ${JSON.stringify(seeked)}`);

  const resumed = await page.evaluate((from) => new Promise((resolve) => {
    const v = document.querySelector('video');
    const before = v.getVideoPlaybackQuality().totalVideoFrames;
    const timer = setTimeout(() => resolve({ timeout: true, currentTime: v.currentTime }), 20000);
    const tick = () => {
      const frames = v.getVideoPlaybackQuality().totalVideoFrames;
      if (v.currentTime > from + 0.5 && frames > before) { clearTimeout(timer); resolve({ currentTime: v.currentTime, frames: frames - before }); } else setTimeout(tick, 50);
    };
    v.play().then(tick, (e) => { clearTimeout(timer); resolve({ playError: String(e) }); });
  }), middle);
  results.resumed = resumed;
  check(!resumed.timeout && !resumed.playError, `the video plays on from ${middle} s: ${JSON.stringify(resumed)}`);

  results.statuses = statuses;
  results.range_requests = statuses.filter((s) => s === 206).length;
  check(statuses.length > 0 && statuses.every((s) => s === 200 || s === 206), `every request for the link succeeds: ${statuses}`);
} catch (e) {
  failures.push(String(e && e.stack || e));
} finally {
  await browser.close();
}
console.log(JSON.stringify({ results, failures }));
process.exit(failures.length ? 1 : 0);
