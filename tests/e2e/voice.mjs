// Browser voice test (SPEC V1-V3, SYS3): three headless Chromium participants with fake
// microphones join one session over the real API; the CSR starts the call, Dave joins it, Erin
// stays out. Checks, from each browser's getStats:
//   - Dave hears the CSR; the CSR does not hear Dave until she passes him the microphone;
//   - then the CSR hears Dave;
//   - Erin, outside the call, receives no call audio.
// Usage: node voice.mjs BASE_URL USERNAME PASSWORD   (run by tests/browser_voice.rs)
// Prints one JSON line of measurements; exits non-zero on any failed check.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

const [base, username, password] = process.argv.slice(2);
const here = path.dirname(new URL(import.meta.url).pathname);

// A continuous 440 Hz tone as every browser's microphone (Chromium repeats the file).
function toneWav(file, freq, seconds) {
  const rate = 48000;
  const n = rate * seconds;
  const buf = Buffer.alloc(44 + n * 2);
  buf.write('RIFF', 0); buf.writeUInt32LE(36 + n * 2, 4); buf.write('WAVE', 8);
  buf.write('fmt ', 12); buf.writeUInt32LE(16, 16); buf.writeUInt16LE(1, 20); buf.writeUInt16LE(1, 22);
  buf.writeUInt32LE(rate, 24); buf.writeUInt32LE(rate * 2, 28); buf.writeUInt16LE(2, 32); buf.writeUInt16LE(16, 34);
  buf.write('data', 36); buf.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) buf.writeInt16LE(Math.round(8000 * Math.sin(2 * Math.PI * freq * i / rate)), 44 + i * 2);
  fs.writeFileSync(file, buf);
}

async function api(method, url, body, token) {
  const res = await fetch(base + url, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

// totalAudioEnergy over 2 s: a heard tone measures around 1e-3 to 1e-1, silence below 1e-8.
const HEARD = 1e-4;
const SILENT = 1e-6;
const failures = [];
function check(ok, what) { if (!ok) failures.push(what); }

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-voice-'));
const wav = path.join(tmp, 'tone.wav');
toneWav(wav, 440, 10);

// Serve the test client page on loopback (a secure context for getUserMedia).
const page = fs.readFileSync(path.join(here, 'voice.html'));
const server = http.createServer((_, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end(page); });
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const pageUrl = `http://127.0.0.1:${server.address().port}/voice.html`;

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    `--use-file-for-fake-audio-capture=${wav}`,
    '--autoplay-policy=no-user-gesture-required',
    '--allow-loopback-in-peer-connection',
  ],
});
const results = {};
try {
  const login = await api('POST', '/api/login', { username, password });
  const session = await api('POST', '/api/sessions', { topic: 'Browser voice' }, login.token);
  const number = session.session.number;
  const dave = await api('POST', '/api/join', { number, name: 'Dave' });
  const erin = await api('POST', '/api/join', { number, name: 'Erin' });
  const wsBase = base.replace('http://', 'ws://');

  const open = async (joined) => {
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    p.on('console', (m) => { if (m.type() === 'error') console.error('[page]', m.text()); });
    const ws = `${wsBase}/ws?token=${joined.token}`;
    await p.goto(`${pageUrl}#ws=${encodeURIComponent(ws)}`);
    await p.evaluate(() => window.opened);
    return p;
  };
  const [csrPage, davePage, erinPage] = [await open(session), await open(dave), await open(erin)];
  const request = (p, cmd) => p.evaluate((c) => window.request(c), cmd);

  const started = await request(csrPage, { type: 'start_voice_call' });
  check(started.type === 'ok', `start_voice_call: ${JSON.stringify(started)}`);
  const joined = await request(davePage, { type: 'join_voice' });
  check(joined.type === 'ok', `join_voice: ${JSON.stringify(joined)}`);
  for (const p of [csrPage, davePage, erinPage]) await p.evaluate(() => window.connectMedia());

  const deadline = Date.now() + 15000;
  for (const p of [csrPage, davePage, erinPage]) {
    while ((await p.evaluate(() => window.inbound())).state !== 'connected') {
      if (Date.now() > deadline) throw new Error('a browser did not connect');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  // Energy each browser receives over a 2 s window.
  const window2s = async () => {
    const before = await Promise.all([csrPage, davePage, erinPage].map((p) => p.evaluate(() => window.inbound())));
    await new Promise((r) => setTimeout(r, 2000));
    const after = await Promise.all([csrPage, davePage, erinPage].map((p) => p.evaluate(() => window.inbound())));
    return after.map((a, i) => ({ energy: a.energy - before[i].energy, packets: a.packets - before[i].packets }));
  };
  await new Promise((r) => setTimeout(r, 1000)); // past jitter buffers and codec start
  const [csr1, dave1, erin1] = await window2s();
  results.before = { csr: csr1, dave: dave1, erin: erin1 };
  check(dave1.energy > HEARD, 'Dave hears the CSR');
  check(csr1.packets > 0 && csr1.energy < SILENT, 'the CSR receives the call but does not hear Dave, who has no microphone');
  check(erin1.packets === 0, 'Erin, outside the call, receives no call audio');

  const dave_id = dave.participant.id;
  const passed = await request(csrPage, { type: 'pass_microphone', to: dave_id });
  check(passed.type === 'ok', `pass_microphone: ${JSON.stringify(passed)}`);
  await new Promise((r) => setTimeout(r, 500));
  const [csr2, dave2, erin2] = await window2s();
  results.after = { csr: csr2, dave: dave2, erin: erin2 };
  check(csr2.energy > HEARD, 'after the microphone is passed, the CSR hears Dave');
  check(dave2.energy > HEARD, 'and Dave still hears the CSR');
  check(erin2.packets === 0, 'Erin still receives nothing');
} catch (e) {
  failures.push(String(e && e.stack || e));
} finally {
  await browser.close();
  server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
}
console.log(JSON.stringify({ results, failures }));
process.exit(failures.length ? 1 : 0);
