// Screen sharing, glass to glass (issue 16, "Must show": figures beside Chromium's own path).
// On a fresh Xvfb display (1920x1080x24) and a fresh Tandem server, a SENDER shares the whole
// screen to the session through the real consoles (the CSR asks view_desktop, the customer
// consents), and a CSR's headless Chromium shows it. Then, for the sender:
//   - latency: the root window changes colour N times (glass_to_glass.py paints it and takes
//     the instant after XSync); the CSR page samples one pixel of every decoded frame
//     (requestVideoFrameCallback, drawImage, getImageData) and notes when the new colour first
//     shows. Both sides use CLOCK_REALTIME ms (Date.now()): one machine, one clock;
//   - CPU of the sender's processes (/proc/<pid>/stat over its process tree) while the screen
//     is still, and while it changes 30 times a second; each window also gives the bitrate and
//     frame rate the CSR receives (getStats inbound-rtp deltas) and the picture size.
// Senders: `chromium` (a customer's Chromium, not headless, on the Xvfb display, sharing with
// getDisplayMedia from the customer page) and `helper` (Tandem Helper: a real `tandem-helper
// join` paired with the customer's page, answering `y` on its terminal, sharing the display).
// `--sender both` (the default) runs each in turn, run by run, and prints them side by side.
// A benchmark: it prints figures and fails only when it cannot measure, never on a timing.
// Usage: node glass_to_glass.mjs [--sender both|chromium|helper] [--runs 3] [--changes 60]
//          [--interval 500] [--window 10] [--fps 30] [--split no] [--server PATH] [--helper PATH]
//          (glass_to_glass.sh builds the server and the helper first)
// --split yes also samples the sender's own preview, where it has one: capture apart from the
// rest; that sampling runs in the sender and slows it, so it is off for the headline figures.

import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const here = path.dirname(new URL(import.meta.url).pathname);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const opts = {
  sender: 'both', runs: 3, changes: 60, interval: 500, window: 10, fps: 30, split: 'no',
  server: path.join(process.env.CARGO_TARGET_DIR || path.join(here, '../../target'), 'release/tandem'),
  helper: path.join(process.env.CARGO_TARGET_DIR || path.join(here, '../../target'), 'release/tandem-helper'),
};
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, '');
  if (!(key in opts) || process.argv[i + 1] === undefined) {
    console.error(`unknown option or missing value: ${process.argv[i]}\n` +
      'usage: node glass_to_glass.mjs [--sender both|chromium|helper] [--runs N] [--changes N] [--interval MS] [--window S] [--fps N] [--split yes|no] [--server PATH] [--helper PATH]');
    process.exit(2);
  }
  opts[key] = typeof opts[key] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}

// The colours the root window takes in turn (consecutive ones always differ), and the point of
// the picture sampled: far from the sender's own window, which sits at the top left.
const COLOURS = ['ff0000', '00c000', '0000ff'];
const SAMPLE = { x: 0.9, y: 0.9 };
const BASE_COLOUR = '808080';
const PASSWORD = 'glass to glass password';
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required',
];

// ---- processes ----

const children = [];
function start(cmd, args, options = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], ...options });
  children.push(child);
  child.on('error', (e) => { console.error(`${cmd}: ${e.message}`); });
  return child;
}
function stopAll() {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGTERM');
}
process.on('exit', stopAll);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { stopAll(); process.exit(130); });

// Xvfb picks a free display itself and writes its number on fd 3.
async function startXvfb() {
  const x = start('Xvfb', ['-displayfd', '3', '-screen', '0', '1920x1080x24', '-nolisten', 'tcp'],
    { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
  const display = await new Promise((resolve, reject) => {
    let got = '';
    x.stdio[3].on('data', (d) => { got += d; if (got.includes('\n')) resolve(`:${got.trim()}`); });
    x.on('exit', (code) => reject(new Error(`Xvfb exited (${code})`)));
  });
  return { display, stop: () => x.kill('SIGTERM') };
}

// The pixel changer: glass_to_glass.py, one line out per colour in.
async function startPainter(display) {
  const p = start('python3', [path.join(here, 'glass_to_glass.py')],
    { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, DISPLAY: display } });
  const lines = readline.createInterface({ input: p.stdout });
  const waiting = [];
  let ready;
  const isReady = new Promise((r) => { ready = r; });
  lines.on('line', (l) => {
    if (l === 'ready') return ready();
    const [before, after] = l.split(' ').map(Number);
    waiting.shift()({ before, after });
  });
  await isReady;
  return {
    paint: (colour) => new Promise((resolve) => { waiting.push(resolve); p.stdin.write(`${colour}\n`); }),
    stop: () => p.stdin.end(),
  };
}

// A Tandem server on a free port with a temporary data folder and one CSR account.
async function startServer() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-g2g-'));
  const port = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
  const base = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    TANDEM_STORAGE_DATABASE: path.join(dir, 'tandem.db'),
    TANDEM_AUTH_SECRET_FILE: path.join(dir, 'secret.key'),
    TANDEM_RECORDING_DIR: path.join(dir, 'recordings'),
    TANDEM_FILES_DIR: path.join(dir, 'files'),
    TANDEM_SERVER_LISTEN: `127.0.0.1:${port}`,
    TANDEM_SERVER_PUBLIC_URL: base,
    TANDEM_SIP_LISTEN: '127.0.0.1:0',
    RUST_LOG: 'warn',
  };
  const add = start(opts.server, ['user', 'add', '--username', 'carol', '--display-name', 'Carol', '--role', 'csr',
    '--email', 'carol@localhost'], { env, stdio: ['pipe', 'ignore', 'inherit'] });
  add.stdin.end(`${PASSWORD}\n`);
  const code = await new Promise((r) => add.on('exit', r));
  if (code !== 0) throw new Error(`could not create the CSR account with ${opts.server} (exit ${code})`);
  const server = start(opts.server, ['serve'], { env });
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${base}/`)).ok) break; } catch { /* not up yet */ }
    if (i > 100) throw new Error('the server did not come up');
    await sleep(100);
  }
  return { base, stop: () => { server.kill('SIGTERM'); fs.rmSync(dir, { recursive: true, force: true }); } };
}

// playwright-core's Browser does not say its process id: the sender's Chromium carries a switch
// of its own (Chromium keeps unknown ones on its command line), found here.
const MARK = `glass-to-glass-sender=${process.pid}`;
function markedPid() {
  const marked = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
    try { return fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').includes(`--${MARK}`); } catch { return false; }
  }).map(Number);
  const parentOf = (p) => Number(fs.readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
  const top = marked.filter((p) => !marked.includes(parentOf(p)));
  if (top.length !== 1) throw new Error(`expected one sender Chromium, found ${JSON.stringify(top)}`);
  return top[0];
}

// CPU ticks (utime + stime) of `pid` and every process below it.
function treeTicks(pid) {
  const parent = new Map();
  const ticks = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(d), Number(f[1]));
      ticks.set(Number(d), Number(f[11]) + Number(f[12]));
    } catch { /* gone */ }
  }
  let sum = 0;
  let n = 0;
  for (const [p] of ticks) {
    for (let q = p; q > 1; q = parent.get(q)) {
      if (q === pid) { sum += ticks.get(p); n += 1; break; }
      if (!parent.has(q)) break;
    }
  }
  return { ticks: sum, processes: n };
}
const CLK_TCK = 100; // Linux's USER_HZ on every architecture Debian ships

// ---- the CSR ----

// Every RTCPeerConnection a page makes, for getStats.
const KEEP_PCS = () => {
  window.pcs = [];
  const Original = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Original {
    constructor(...a) { super(...a); window.pcs.push(this); }
  };
};

async function startCsr(base) {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', ...CHROMIUM_ARGS] });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  await ctx.addInitScript(KEEP_PCS);
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.error('[csr]', m.text()); });
  await page.goto(`${base}/`);
  await page.getByLabel('Username').fill('carol');
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByLabel('Topic').fill('Glass to glass');
  await page.getByLabel('Topic').press('Enter');
  await page.getByText(/Session \d{9} started/).waitFor();
  const panel = page.getByRole('tabpanel', { name: /Glass to glass/ });
  const field = panel.getByLabel('Invite link');
  await page.waitForFunction((el) => el.value, await field.elementHandle());
  const invite = await field.inputValue();
  return { browser, page, panel, invite };
}

// In the CSR page: samples the shared screen's pixel at SAMPLE on every decoded frame and logs
// each change of colour class (one of COLOURS, BASE_COLOUR, or null) with its instants.
function watchFrames([label, colours, at]) {
  const video = [...document.querySelectorAll('video')].find((v) => v.getAttribute('aria-label') === label && v.offsetParent);
  if (!video) throw new Error(`no visible video "${label}"`);
  const canvas = document.createElement('canvas');
  canvas.width = 1;
  canvas.height = 1;
  const g = canvas.getContext('2d', { willReadFrequently: true });
  const rgb = colours.map((c) => [0, 2, 4].map((i) => parseInt(c.slice(i, i + 2), 16)));
  const classify = (d) => {
    const i = rgb.findIndex((c) => Math.abs(c[0] - d[0]) < 48 && Math.abs(c[1] - d[1]) < 48 && Math.abs(c[2] - d[2]) < 48);
    return i < 0 ? null : colours[i];
  };
  window.g2g = { log: [], last: undefined };
  const onFrame = (now, meta) => {
    if (window.g2g.stopped) return;
    const t = Date.now();
    g.drawImage(video, Math.floor(meta.width * at.x), Math.floor(meta.height * at.y), 1, 1, 0, 0, 1, 1);
    const cls = classify(g.getImageData(0, 0, 1, 1).data);
    if (cls !== window.g2g.last) {
      window.g2g.last = cls;
      window.g2g.log.push({ colour: cls, t });
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

// Received video over all the page's connections: bytes, frames decoded, picture size.
const inbound = (page) => page.evaluate(async () => {
  const sum = { bytes: 0, frames: 0, width: 0, height: 0, t: Date.now() };
  for (const pc of window.pcs) {
    for (const s of (await pc.getStats()).values()) {
      if (s.type !== 'inbound-rtp' || s.kind !== 'video') continue;
      sum.bytes += s.bytesReceived || 0;
      sum.frames += s.framesDecoded || 0;
      if (s.frameWidth) { sum.width = s.frameWidth; sum.height = s.frameHeight; }
    }
  }
  return sum;
});

// Where a received frame's time goes on the CSR's side (getStats inbound-rtp video counters),
// summed over the page's connections; `receiver(a, b)` makes them per frame over a phase.
const RECEIVER_COUNTERS = ['packetsReceived', 'packetsLost', 'nackCount', 'pliCount', 'firCount',
  'framesReceived', 'framesDecoded', 'keyFramesDecoded', 'framesDropped', 'freezeCount',
  'totalFreezesDuration', 'jitterBufferDelay', 'jitterBufferTargetDelay', 'jitterBufferMinimumDelay',
  'jitterBufferEmittedCount', 'totalAssemblyTime', 'framesAssembledFromMultiplePackets',
  'totalDecodeTime', 'totalProcessingDelay'];
const receiverCounters = (page) => page.evaluate(async (names) => {
  const sum = Object.fromEntries(names.map((n) => [n, 0]));
  for (const pc of window.pcs) {
    for (const s of (await pc.getStats()).values()) {
      if (s.type !== 'inbound-rtp' || s.kind !== 'video') continue;
      for (const n of names) sum[n] += s[n] || 0;
    }
  }
  return sum;
}, RECEIVER_COUNTERS);
function receiver(a, b) {
  const d = Object.fromEntries(RECEIVER_COUNTERS.map((n) => [n, b[n] - a[n]]));
  const per = (total, count) => (count ? round((total * 1000) / count, 1) : null);
  return {
    packets: d.packetsReceived, lost: d.packetsLost, nacks: d.nackCount, plis: d.pliCount + d.firCount,
    frames_decoded: d.framesDecoded, keyframes: d.keyFramesDecoded, dropped: d.framesDropped,
    freezes: d.freezeCount, freezes_ms: round(d.totalFreezesDuration * 1000),
    jitter_buffer_ms: per(d.jitterBufferDelay, d.jitterBufferEmittedCount),
    jitter_target_ms: per(d.jitterBufferTargetDelay, d.jitterBufferEmittedCount),
    jitter_minimum_ms: per(d.jitterBufferMinimumDelay, d.jitterBufferEmittedCount),
    assembly_ms: per(d.totalAssemblyTime, d.framesAssembledFromMultiplePackets),
    decode_ms: per(d.totalDecodeTime, d.framesDecoded),
    processing_ms: per(d.totalProcessingDelay, d.framesDecoded),
  };
}

// ---- senders: everything a sender does differently ----

// A sender joins the session by `invite` as the customer Dave, answers the CSR's view_desktop
// request and shares the whole screen of `display`. `rootPid` is the process whose tree's CPU
// is the sender's cost; optional: `encoder()`, what the sender says of its encoding, and `local`,
// a page and video label where the sender shows its own capture.
const SENDERS = {
  async chromium({ display, invite }) {
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: false,
      env: { ...process.env, DISPLAY: display },
      args: [...CHROMIUM_ARGS, '--window-position=0,0', '--window-size=800,600',
        '--auto-select-desktop-capture-source=Entire screen', `--${MARK}`],
    });
    const ctx = await browser.newContext({ viewport: null });
    await ctx.addInitScript(KEEP_PCS);
    const page = await ctx.newPage();
    page.on('console', (m) => { if (m.type() === 'error' || process.env.G2G_DEBUG) console.error('[customer]', m.text()); });
    await page.goto(invite);
    await page.getByLabel('Your name').fill('Dave');
    await page.getByLabel('Your name').press('Enter');
    await page.getByText('You are in the session.').waitFor();
    return {
      rootPid: markedPid(),
      // The customer's page calls getDisplayMedia from the click on Allow.
      consent: async () => {
        const dialog = page.getByRole('dialog', { name: 'Permission requested' });
        await dialog.waitFor();
        await dialog.getByRole('button', { name: 'Allow' }).click();
        await page.getByText('Carol sees what you share.').waitFor().catch(async (e) => {
          throw new Error(`the customer's page does not share (its sharing panel, hidden=): ${await page.locator('#sharing').evaluate((el) => `${el.hidden} ${el.innerText}`).catch(() => '?')}\n${e.message}`);
        });
      },
      // Its own preview of what it shares: the same sampling there splits the latency into
      // capture (X display to the sender's page) and the rest (encode, network, decode).
      local: { page, label: 'What you are sharing' },
      // What its encoder says: why it sends less than asked (cpu, bandwidth), size, rate.
      encoder: () => page.evaluate(async () => {
        for (const pc of window.pcs) {
          for (const s of (await pc.getStats()).values()) {
            if (s.type === 'outbound-rtp' && s.kind === 'video' && s.framesEncoded) {
              return { limited_by: s.qualityLimitationReason, encoder: s.encoderImplementation, fps: s.framesPerSecond, picture: `${s.frameWidth}x${s.frameHeight}` };
            }
          }
        }
        return null;
      }),
      stop: () => browser.close(),
    };
  },
  // Tandem Helper: the customer (a headless Chromium on the invite link, only to be present:
  // it shares nothing) asks its page's API for a pairing code, as the page does when it offers
  // the helper; `tandem-helper join` takes it and shares the display; the test answers `y` on
  // the helper's terminal, as a customer would.
  async helper({ display, invite, base }) {
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', ...CHROMIUM_ARGS] });
    const page = await (await browser.newContext()).newPage();
    page.on('console', (m) => { if (m.type() === 'error' || process.env.G2G_DEBUG) console.error('[customer]', m.text()); });
    const joined = page.waitForResponse((r) => r.url().endsWith('/api/join') && r.request().method() === 'POST');
    await page.goto(invite);
    await page.getByLabel('Your name').fill('Dave');
    await page.getByLabel('Your name').press('Enter');
    const { token } = await (await joined).json();
    await page.getByText('You are in the session.').waitFor();
    const res = await fetch(`${base}/api/helper/codes`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: '{}',
    });
    const code = await res.json();
    if (!res.ok) throw new Error(`no pairing code: ${JSON.stringify(code)}`);
    const helper = start(opts.helper, ['join', base, code.code, '--display', display, '--terminal'],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
        // G2G_HELPER_TIMING=1: the helper prints where each picture's time went (stderr). Given
        // to the helper only: the server refuses TANDEM_* variables it does not know.
        env: { ...process.env, RUST_LOG: 'warn', ...(process.env.G2G_HELPER_TIMING ? { TANDEM_HELPER_TIMING: '1' } : {}) },
      });
    const lines = readline.createInterface({ input: helper.stdout });
    // Every line, kept: a question may come before the harness waits for it.
    const said = [];
    const waiting = [];
    lines.on('line', (l) => {
      if (process.env.G2G_DEBUG) console.error('[helper]', l);
      said.push(l);
      for (const w of waiting.splice(0)) if (!w()) waiting.push(w);
    });
    let read = 0; // lines already matched or passed over
    const line = (re) => new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`the helper did not say ${re}`)), 30000);
      const look = () => {
        for (; read < said.length; read++) {
          if (re.test(said[read])) { clearTimeout(t); resolve(said[read++]); return true; }
        }
        return false;
      };
      if (!look()) waiting.push(look);
    });
    const exited = new Promise((r) => helper.on('exit', r));
    await Promise.race([line(/^joined the session/),
      exited.then((c) => { throw new Error(`tandem-helper exited (${c}) before joining`); })]);
    return {
      rootPid: helper.pid,
      consent: async () => {
        await line(/^question:/);
        helper.stdin.write('y\n');
        await line(/^your screen is being shown/);
      },
      stop: async () => { helper.stdin.end(); helper.kill('SIGTERM'); await browser.close(); },
    };
  },
};

// ---- one run ----

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
const round = (v, d = 1) => Math.round(v * 10 ** d) / 10 ** d;

// A change is seen by the first frame in its colour after it was asked for and before the same
// colour was painted again; none there (a frame skipped past it): missed. Latency is counted
// from the instant after XSync.
function latencies(changes, log) {
  const lat = [];
  let missed = 0;
  for (const [i, c] of changes.entries()) {
    const again = changes.slice(i + 1).find((n) => n.colour === c.colour)?.before ?? Infinity;
    const seen = log.find((f) => f.colour === c.colour && f.t >= c.before && f.t < again);
    if (seen) lat.push(seen.t - c.after);
    else missed += 1;
  }
  const inOrder = lat.map((l) => round(l));
  lat.sort((a, b) => a - b);
  return lat.length ? {
    p50_ms: round(pct(lat, 0.5)), p90_ms: round(pct(lat, 0.9)), max_ms: round(lat[lat.length - 1]),
    min_ms: round(lat[0]), changes: changes.length, missed, each_ms: inOrder,
  } : { changes: changes.length, missed };
}

async function measureWindow(sender, csr, seconds, during) {
  const t0 = treeTicks(sender.rootPid);
  const s0 = await inbound(csr.page);
  const w0 = Date.now();
  const painted = await during(seconds * 1000);
  const t1 = treeTicks(sender.rootPid);
  const s1 = await inbound(csr.page);
  const secs = (Date.now() - w0) / 1000;
  return {
    cpu_pct_of_core: round(((t1.ticks - t0.ticks) / CLK_TCK) / secs * 100),
    processes: t1.processes,
    kbit_s: round((s1.bytes - s0.bytes) * 8 / 1000 / ((s1.t - s0.t) / 1000)),
    fps_received: round((s1.frames - s0.frames) / ((s1.t - s0.t) / 1000)),
    picture: `${s1.width}x${s1.height}`,
    changes_per_s: round((painted || 0) / secs),
    ...(sender.encoder ? { sender_encoder: await sender.encoder() } : {}),
  };
}

async function runOnce(senderName) {
  const x = await startXvfb();
  const painter = await startPainter(x.display);
  await painter.paint(BASE_COLOUR);
  const server = await startServer();
  const csr = await startCsr(server.base);
  const sender = await SENDERS[senderName]({ display: x.display, invite: csr.invite, base: server.base });
  const label = sender.label || "Dave's shared screen";
  try {
    await csr.panel.getByRole('tab', { name: 'Desktop' }).click();
    await csr.panel.getByRole('button', { name: "View customer's desktop" }).click();
    await sender.consent();
    await csr.page.waitForFunction((l) => [...document.querySelectorAll('video')]
      .some((v) => v.getAttribute('aria-label') === l && v.getVideoPlaybackQuality().totalVideoFrames > 0),
    label, { timeout: 30000 }).catch(async (e) => {
      const videos = await csr.page.evaluate(() => [...document.querySelectorAll('video')]
        .map((v) => `${v.getAttribute('aria-label')}: ${v.getVideoPlaybackQuality().totalVideoFrames} frames`));
      throw new Error(`no frame in the CSR's video "${label}" (videos: ${JSON.stringify(videos)})\n${e.message}`);
    });
    await csr.page.evaluate(watchFrames, [label, [...COLOURS, BASE_COLOUR], SAMPLE]);
    await csr.page.waitForFunction((c) => window.g2g.last === c, BASE_COLOUR, { timeout: 30000 });
    if (sender.local && opts.split === 'yes') {
      const { page, label } = sender.local;
      await page.locator(`video[aria-label="${label}"]`).scrollIntoViewIfNeeded();
      await page.evaluate(watchFrames, [label, [...COLOURS, BASE_COLOUR], SAMPLE]);
      await page.waitForFunction((c) => window.g2g.last === c, BASE_COLOUR, { timeout: 30000 });
    }
    await sleep(2000); // the encoder's ramp-up after the first frames

    // Latency: N changes, one every `interval` ms.
    const r0 = await receiverCounters(csr.page);
    const changes = [];
    for (let i = 0; i < opts.changes; i++) {
      const colour = COLOURS[i % COLOURS.length];
      const at = Date.now();
      changes.push({ colour, ...(await painter.paint(colour)) });
      await sleep(Math.max(0, opts.interval - (Date.now() - at)));
    }
    await sleep(1000);
    const latency = latencies(changes, await csr.page.evaluate(() => window.g2g.log));
    latency.receiver = receiver(r0, await receiverCounters(csr.page));
    const paintMs = changes.map((c) => c.after - c.before).sort((a, b) => a - b);
    latency.paint_p50_ms = round(pct(paintMs, 0.5), 2);
    latency.paint_max_ms = round(paintMs[paintMs.length - 1], 2);
    if (sender.local && opts.split === 'yes') {
      latency.sender_local = latencies(changes, await sender.local.page.evaluate(() => window.g2g.log));
      // The sampling is not the sender's work: it stops before the CPU is measured.
      await sender.local.page.evaluate(() => { window.g2g.stopped = true; window.scrollTo(0, 0); });
    }
    await csr.page.evaluate(() => { window.g2g.stopped = true; });

    // CPU and bitrate: still, then 30 changes a second.
    const still = await measureWindow(sender, csr, opts.window, (ms) => sleep(ms));
    const moving = await measureWindow(sender, csr, opts.window, async (ms) => {
      const t0 = Date.now();
      let i = 0;
      for (; Date.now() - t0 < ms; i++) {
        await painter.paint(COLOURS[i % COLOURS.length]);
        const next = t0 + (i + 1) * (1000 / opts.fps);
        await sleep(Math.max(0, next - Date.now()));
      }
      return i;
    });
    return { latency, still, moving };
  } finally {
    await sender.stop().catch(() => {});
    await csr.browser.close().catch(() => {});
    painter.stop();
    server.stop();
    x.stop();
  }
}

// ---- main ----

const senders = opts.sender === 'both' ? Object.keys(SENDERS) : [opts.sender];
if (!senders.every((n) => n in SENDERS)) {
  console.error(`--sender must be one of: both, ${Object.keys(SENDERS).join(', ')}`);
  process.exit(2);
}
const machine = () => ({ nproc: os.cpus().length, loadavg: os.loadavg().map((l) => round(l, 2)) });
console.log(JSON.stringify({ ...opts, senders, machine: machine() }));
// Run by run, each sender in turn, so that both see the same spells of load.
const runs = Object.fromEntries(senders.map((n) => [n, []]));
for (let r = 0; r < opts.runs; r++) {
  for (const name of senders) {
    const res = await runOnce(name);
    res.loadavg = machine().loadavg;
    runs[name].push(res);
    console.log(JSON.stringify({ sender: name, run: r + 1, ...res }));
  }
}
const spread = (list, f) => {
  const v = list.map(f).filter((x) => typeof x === 'number');
  return v.length ? `${round(Math.min(...v))}..${round(Math.max(...v))}` : 'n/a';
};
const summaries = senders.map((name) => {
  const list = runs[name];
  return {
    summary: name,
    runs: list.length,
    latency_p50_ms: spread(list, (r) => r.latency.p50_ms),
    latency_p90_ms: spread(list, (r) => r.latency.p90_ms),
    latency_max_ms: spread(list, (r) => r.latency.max_ms),
    sender_local_p50_ms: spread(list, (r) => r.latency.sender_local?.p50_ms),
    missed: list.map((r) => r.latency.missed),
    cpu_still_pct: spread(list, (r) => r.still.cpu_pct_of_core),
    cpu_30fps_pct: spread(list, (r) => r.moving.cpu_pct_of_core),
    kbit_s_still: spread(list, (r) => r.still.kbit_s),
    kbit_s_30fps: spread(list, (r) => r.moving.kbit_s),
    fps_received_30fps: spread(list, (r) => r.moving.fps_received),
    picture: list.map((r) => r.moving.picture),
    loadavg_1min: spread(list, (r) => r.loadavg[0]),
  };
});
for (const s of summaries) console.log(JSON.stringify(s));
// Side by side: one column a sender.
const rows = [
  ['latency p50 (ms), spread of runs', 'latency_p50_ms'], ['latency p90 (ms)', 'latency_p90_ms'],
  ['latency max (ms)', 'latency_max_ms'], ['missed changes, per run', 'missed'],
  ['CPU still (% of a core)', 'cpu_still_pct'], ['CPU, 30 changes/s', 'cpu_30fps_pct'],
  ['kbit/s still', 'kbit_s_still'], ['kbit/s, 30 changes/s', 'kbit_s_30fps'],
  ['frames/s received, 30 changes/s', 'fps_received_30fps'], ['load average (1 min) after runs', 'loadavg_1min'],
];
const cell = (v) => (Array.isArray(v) ? v.join(' ') : String(v));
const widths = [32, ...summaries.map(() => 22)];
const line = (cells) => cells.map((c, i) => cell(c).padEnd(widths[i])).join(' | ');
console.log(line(['', ...senders]));
for (const [title, key] of rows) console.log(line([title, ...summaries.map((s) => s[key])]));
process.exit(0);
