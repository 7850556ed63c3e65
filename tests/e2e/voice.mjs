// Browser voice test (SPEC V1-V3, SYS3): three headless Chromium participants, each speaking a
// 440 Hz tone, join one session over the real API; the CSR starts the call, Dave joins it, Erin
// stays out. Checks, from what each browser receives:
//   - Dave hears the CSR; the CSR does not hear Dave until she passes him the microphone;
//   - then the CSR hears Dave;
//   - Erin, outside the call, receives no call audio.
// Usage: node voice.mjs BASE_URL USERNAME PASSWORD   (run by tests/browser_media.rs)
// Prints one JSON line of measurements; exits non-zero on any failed check.

import { apiClient, connected, run, sleep } from './harness.mjs';

const [base, username, password] = process.argv.slice(2);
const api = apiClient(base);

// The tone's level (dB) in what a page receives: a heard tone peaks near -26 dB, silence stays
// below -80 dB.
const HEARD = -45;
const SILENT = -70;
await run(base, [], async ({ open, check, results }) => {
  const login = await api('POST', '/api/login', { username, password });
  const session = await api('POST', '/api/sessions', { topic: 'Browser voice' }, login.token);
  const number = session.session.number;
  const dave = await api('POST', '/api/join', { number, name: 'Dave' });
  const erin = await api('POST', '/api/join', { number, name: 'Erin' });
  const [csrPage, davePage, erinPage] = [await open(session), await open(dave), await open(erin)];
  const request = (p, cmd) => p.evaluate((c) => window.request(c), cmd);

  const started = await request(csrPage, { type: 'start_voice_call' });
  check(started.type === 'ok', `start_voice_call: ${JSON.stringify(started)}`);
  const joined = await request(davePage, { type: 'join_voice' });
  check(joined.type === 'ok', `join_voice: ${JSON.stringify(joined)}`);
  for (const p of [csrPage, davePage, erinPage]) await p.evaluate(() => window.connectMedia(440));
  await connected([csrPage, davePage, erinPage]);
  // Energy each browser receives over a 2 s window.
  // The 440 Hz level each browser hears and the audio packets it receives, over 2 s.
  const window2s = async () => {
    const pages = [csrPage, davePage, erinPage];
    const before = await Promise.all(pages.map((p) => p.evaluate(() => window.inbound())));
    const levels = await Promise.all(pages.map((p) => p.evaluate(() => window.levels([440], 2000))));
    const after = await Promise.all(pages.map((p) => p.evaluate(() => window.inbound())));
    return after.map((a, i) => ({ level: levels[i][0], packets: a.packets - before[i].packets }));
  };
  await sleep(1000); // past jitter buffers and codec start
  const [csr1, dave1, erin1] = await window2s();
  results.before = { csr: csr1, dave: dave1, erin: erin1 };
  check(dave1.level > HEARD, 'Dave hears the CSR');
  check(csr1.packets > 0 && csr1.level < SILENT, 'the CSR receives the call but does not hear Dave, who has no microphone');
  check(erin1.packets === 0, 'Erin, outside the call, receives no call audio');

  const dave_id = dave.participant.id;
  const passed = await request(csrPage, { type: 'pass_microphone', to: dave_id });
  check(passed.type === 'ok', `pass_microphone: ${JSON.stringify(passed)}`);
  await sleep(500);
  const [csr2, dave2, erin2] = await window2s();
  results.after = { csr: csr2, dave: dave2, erin: erin2 };
  check(csr2.level > HEARD, 'after the microphone is passed, the CSR hears Dave');
  check(dave2.level > HEARD, 'and Dave still hears the CSR');
  check(erin2.packets === 0, 'Erin still receives nothing');
});
