// A recording played in the browser through a signed streaming link (SPEC R4 "play in the
// browser", "streaming link"), in Debian's headless Chromium: no account, no Bearer token; the
// <video> loads the MP4 from the link, plays, and seeks, which takes byte-range requests.
// The page is a blank one on the server's own origin (the join page's address, its content
// replaced), so the consoles' Content-Security-Policy (media-src 'self') applies as it would.
// Usage: node playback.mjs BASE_URL LINK PASSWORD   (run by tests/recordings_http.rs; the
// password is not used)

import { launch } from './harness.mjs';

const [base, link] = process.argv.slice(2);
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
  check(Math.abs((loaded.duration || 0) - 4) < 0.2, `the video lasts about 4 s: ${loaded.duration}`);
  check(loaded.width === 320 && loaded.height === 240, `the picture is 320x240: ${loaded.width}x${loaded.height}`);

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

  const seeked = await page.evaluate(() => new Promise((resolve) => {
    const v = document.querySelector('video');
    v.pause();
    const timer = setTimeout(() => resolve({ timeout: true, currentTime: v.currentTime }), 20000);
    v.addEventListener('seeked', () => { clearTimeout(timer); resolve({ currentTime: v.currentTime }); }, { once: true });
    v.currentTime = 3.0;
  }));
  results.seeked = seeked;
  check(!seeked.timeout && Math.abs(seeked.currentTime - 3) < 0.3, `the video seeks to 3 s: ${JSON.stringify(seeked)}`);

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
