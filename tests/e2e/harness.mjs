// What the browser tests share: the API client, the test page served at the server's origin,
// Debian's headless Chromium with fake media devices, and the check list that becomes the report.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const here = path.dirname(new URL(import.meta.url).pathname);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function apiClient(base) {
  return async (method, url, body, token) => {
    const res = await fetch(base + url, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
}

// Debian's Chromium, headless, with fake camera and microphone and media permissions granted.
export function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
      '--allow-loopback-in-peer-connection',
      ...extraArgs,
    ],
  });
}

// Runs `body({ open, failures, check, results })`, then prints one JSON line of results and
// failures and exits non-zero on any. `open(joined)` opens client.html as that participant.
// The browser is handed client.html at an address on the server's origin (the server itself
// has no such page), so the page imports the shipped /assets/ modules from the server under test.
// A page the browser did not fetch has no address, so Chromium counts it as public and would
// block its WebSocket to loopback: the context is granted local network access.
export async function run(base, extraArgs, body) {
  const page = fs.readFileSync(path.join(here, 'client.html'));
  const pageUrl = `${base}/e2e/client.html`;
  const browser = await launch(extraArgs);
  const open = async (joined) => {
    const ctx = await browser.newContext({ permissions: ['local-network-access'] });
    await ctx.route(pageUrl, (route) => route.fulfill({ contentType: 'text/html', body: page }));
    const p = await ctx.newPage();
    p.on('console', (m) => { if (m.type() === 'error') console.error('[page]', m.text()); });
    await p.goto(`${pageUrl}#token=${encodeURIComponent(joined.token)}`);
    await p.evaluate(() => window.opened);
    return p;
  };
  const failures = [];
  const results = {};
  const check = (ok, what) => { if (!ok) failures.push(what); };
  try {
    await body({ open, check, results });
  } catch (e) {
    failures.push(String(e && e.stack || e));
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify({ results, failures }));
  process.exit(failures.length ? 1 : 0);
}

// Waits until every page's media connection is up.
export async function connected(pages, ms = 20000) {
  const deadline = Date.now() + ms;
  for (const p of pages) {
    while ((await p.evaluate(() => window.state())) !== 'connected') {
      if (Date.now() > deadline) throw new Error('a browser did not connect');
      await sleep(100);
    }
  }
}

// Polls `f` until it returns something truthy and returns that, or fails with `what`.
export async function until(f, what, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(200);
  }
}

// Frames shown so far by the visible <video> with this accessible name.
export const videoFrames = (page, label) => page.evaluate((l) => {
  const v = [...document.querySelectorAll('video')].find((el) => el.getAttribute('aria-label') === l && el.offsetParent);
  return v ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
}, label);

// A console scenario: runs `body({ browser, check, results, shot })` in a fresh Chromium, saves
// a screenshot of every page if it fails, prints one JSON line of results and failures, and
// exits non-zero on any failure.
export async function scenario(name, extraArgs, body) {
  const shots = path.join(here, 'artifacts');
  fs.mkdirSync(shots, { recursive: true });
  const shot = (page, file) => page.screenshot({ path: path.join(shots, `${file}.png`), fullPage: true });
  const failures = [];
  const results = {};
  const check = (ok, what) => { if (!ok) failures.push(what); };
  const browser = await launch(extraArgs);
  try {
    await body({ browser, check, results, shot, shots });
  } catch (e) {
    failures.push(String(e && e.stack || e));
    for (const [i, ctx] of browser.contexts().entries()) {
      for (const [j, p] of ctx.pages().entries()) await shot(p, `failed-${name}-${i}-${j}`).catch(() => {});
    }
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify({ results, failures }));
  process.exit(failures.length ? 1 : 0);
}

// The CSR signs in on `page` and starts a session on `topic`: its tab panel and invite link.
export async function signInAndStart(page, base, user, password, topic) {
  await page.goto(`${base}/`);
  await page.getByLabel('Username').fill(user);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByLabel('Topic').fill(topic);
  await page.getByRole('button', { name: 'Start session' }).click();
  await page.getByText(/Session \d{9} started/).waitFor();
  const panel = page.getByRole('tabpanel', { name: topic });
  return { panel, link: await panel.getByLabel('Invite link').inputValue() };
}

// A customer named `name` joins on `page` by the invite `link`; returns once the page says so.
export async function joinByLink(page, base, link, name) {
  const invite = new URL(link);
  await page.goto(`${base}${invite.pathname}${invite.search}`);
  await page.getByLabel('Your name').fill(name);
  await page.getByLabel('Your name').press('Enter');
  await page.getByText('You are in the session.').waitFor();
}
