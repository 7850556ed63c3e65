// Browser media test (SPEC V1-V3, D1, D12, D13, VI1, VI2, SYS3): three headless Chromium pages,
// a CSR (Carol), a customer (Dave) and an assistant CSR (Ann), join one session over the real
// API, WebSocket and UDP media path. Each page speaks its own tone. Checks, from each browser:
//   - Carol and Dave, holding the microphones, hear each other; Ann, in the call without one,
//     is heard by nobody; nobody hears themselves;
//   - Dave's screen share (after his consent) reaches Carol and Ann: frames decoded;
//   - Carol's and Dave's cameras are seen; Ann's, a third camera, is refused by the server
//     (start_camera fails, and the video her page sends anyway reaches nobody);
//   - an annotation Dave draws reaches Carol and Ann; control input from Ann reaches nobody.
// Usage: node video.mjs BASE_URL CSR_USER ASSISTANT_USER PASSWORD   (run by tests/browser_media.rs)
// Prints one JSON line of measurements; exits non-zero on any failed check.

import { apiClient, connected, run, sleep } from './harness.mjs';

const [base, csrUser, assistantUser, password] = process.argv.slice(2);
const api = apiClient(base);

const TONES = { carol: 440, dave: 1000, ann: 2500 };
// Analyser levels (dB, mean over 2 s). A heard tone measures near -26 dB; an unheard one, only
// the other tones' leakage and the codec's noise, measures below -80 dB.
const HEARD_DB = -45;
const ABSENT_DB = -70;
await run(base, ['--auto-select-desktop-capture-source=Entire screen'], async ({ open, check, results }) => {
  const carolLogin = await api('POST', '/api/login', { username: csrUser, password });
  const annLogin = await api('POST', '/api/login', { username: assistantUser, password });
  const session = await api('POST', '/api/sessions', { topic: 'Browser video' }, carolLogin.token);
  const number = session.session.number;
  const dave = await api('POST', '/api/join', { number, name: 'Dave' });
  const ann = await api('POST', '/api/assist', { number }, annLogin.token);
  const pages = { carol: await open(session), dave: await open(dave), ann: await open(ann) };
  const id = {};
  for (const [who, p] of Object.entries(pages)) {
    id[who] = await p.evaluate(async () => {
      while (!window.frames_seen.some((f) => f.type === 'welcome')) await new Promise((r) => setTimeout(r, 20));
      return window.frames_seen.find((f) => f.type === 'welcome').you;
    });
  }
  const request = (who, cmd) => pages[who].evaluate((c) => window.request(c), cmd);
  const expectOk = async (who, cmd) => {
    const r = await request(who, cmd);
    check(r.type === 'ok', `${who} ${cmd.type}: ${JSON.stringify(r)}`);
  };

  // The call: Carol starts it and passes Dave the microphone; Ann joins without one.
  await expectOk('carol', { type: 'start_voice_call' });
  await expectOk('dave', { type: 'join_voice' });
  await expectOk('ann', { type: 'join_voice' });
  await expectOk('carol', { type: 'pass_microphone', to: id.dave });
  for (const [who, p] of Object.entries(pages)) await p.evaluate((f) => window.connectMedia(f), TONES[who]);
  await connected(Object.values(pages));

  // D1 with consent: Carol asks to view Dave's desktop; he grants it and shares.
  await expectOk('carol', { type: 'request_activity', activity: 'view_desktop' });
  const req = await pages.dave.evaluate(async () => {
    for (;;) {
      const f = window.frames_seen.find((m) => m.type === 'event' && m.event.type === 'consent_requested');
      if (f) return f.event.request;
      await new Promise((r) => setTimeout(r, 20));
    }
  });
  await expectOk('dave', { type: 'consent_reply', request: req, grant: true });
  results.screen_source = await pages.dave.evaluate(() => window.shareScreen());

  // VI1, VI2: Carol's camera, then Dave's; Ann is a third sender and is refused.
  await expectOk('carol', { type: 'start_camera' });
  await pages.carol.evaluate(() => window.startCamera());
  await expectOk('dave', { type: 'start_camera' });
  await pages.dave.evaluate(() => window.startCamera());
  const refused = await request('ann', { type: 'start_camera' });
  results.third_camera = refused;
  check(refused.type === 'error' && refused.code === 'camera_not_allowed', `a third camera is refused: ${JSON.stringify(refused)}`);
  // Her page sends camera video anyway: the server must not pass it on.
  await pages.ann.evaluate(() => window.startCamera());

  await sleep(4000); // renegotiation, keyframes, decoders, jitter buffers
  const video = {};
  for (const [who, p] of Object.entries(pages)) video[who] = await p.evaluate(() => window.videoIn());
  results.video = video;
  const seen = (who, stream) => (video[who][stream] || 0) > 0;
  check(seen('carol', `screen-${id.dave}`), 'D13: Carol sees Dave\'s screen (framesDecoded > 0)');
  check(seen('ann', `screen-${id.dave}`), 'D13: Ann, the assistant, sees Dave\'s screen');
  check(!seen('dave', `screen-${id.dave}`), 'Dave is not sent his own screen');
  check(seen('carol', `camera-${id.dave}`), 'Carol sees Dave\'s camera');
  check(seen('dave', `camera-${id.carol}`), 'Dave sees Carol\'s camera');
  check(seen('ann', `camera-${id.carol}`) && seen('ann', `camera-${id.dave}`), 'Ann sees both cameras');
  for (const who of ['carol', 'dave']) {
    check(!Object.keys(video[who]).includes(`camera-${id.ann}`), `${who} gets no track for Ann's refused camera`);
  }

  // Audio, per tone, over 2 s.
  const freqs = [TONES.carol, TONES.dave, TONES.ann];
  const levels = {};
  for (const [who, p] of Object.entries(pages)) levels[who] = await p.evaluate(([f]) => window.levels(f, 2000), [freqs]);
  results.levels_db = levels;
  const [C, D, A] = [0, 1, 2];
  check(levels.carol[D] > HEARD_DB, 'Carol hears Dave');
  check(levels.dave[C] > HEARD_DB, 'Dave hears Carol');
  check(levels.ann[C] > HEARD_DB && levels.ann[D] > HEARD_DB, 'Ann hears both microphone holders');
  check(levels.carol[A] < ABSENT_DB && levels.dave[A] < ABSENT_DB, 'V3: Ann, without a microphone, is not heard');
  check(levels.carol[C] < ABSENT_DB && levels.dave[D] < ABSENT_DB, 'nobody hears themselves');

  // D12: Dave's annotation reaches the others; Ann's control input goes nowhere (no control).
  const sent = await pages.dave.evaluate(() => window.send('annotation', 'pen 10,10 20,20'));
  const typed = await pages.ann.evaluate(() => window.send('control', 'key a'));
  check(sent && typed, 'the data channels are open');
  await sleep(500);
  const channelIn = {};
  for (const [who, p] of Object.entries(pages)) channelIn[who] = await p.evaluate(() => window.channel_in);
  results.channel_in = channelIn;
  for (const who of ['carol', 'ann']) {
    check(channelIn[who].some(([l, t]) => l === 'annotation' && t === 'pen 10,10 20,20'), `${who} sees Dave's annotation`);
  }
  check(!Object.values(channelIn).flat().some(([l]) => l === 'control'), 'control input without control reaches nobody');
  for (const [who, p] of Object.entries(pages)) {
    const errors = await p.evaluate(() => window.errors);
    check(errors.length === 0, `${who}'s page errors: ${JSON.stringify(errors)}`);
  }
});
