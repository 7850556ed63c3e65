// Words match deeds (issue 16, items 4 and 9), in Debian's headless Chromium:
// - Carol (CSR) starts a session; Dave joins by the invite link. Nothing on Dave's page speaks
//   of control.
// - Carol asks to control Dave's desktop. Dave has no Tandem Helper: his page asks nothing and
//   promises nothing; it offers the helper in plain words, with a code "1234 5678", its expiry,
//   and "Waiting for Tandem Helper...". Carol's console tells her to ask Dave to run it.
// - The test plays Tandem Helper: the code from Dave's page goes to POST /api/helper/join, and
//   the helper's WebSocket connects (from a page at the server's origin). Dave's page then says
//   the question is in Tandem Helper's window; the helper gets it, and allows it.
// - Dave's page says Carol uses his mouse and keyboard through Tandem Helper; he stops it from
//   the page.
// Usage: node helper.mjs BASE_URL CSR PASSWORD   (run by tests/server/helper_pairing.rs)

import { apiClient, scenario, sleep, signInAndStart, joinByLink } from './harness.mjs';

const [base, csrUser, password] = process.argv.slice(2);
const api = apiClient(base);

// The page's visible text: what Dave can read.
const visible = (page) => page.locator('body').innerText();

await scenario('helper', [], async ({ browser, check, results, shot }) => {
  const carol = await (await browser.newContext({ viewport: { width: 1280, height: 720 } })).newPage();
  carol.on('console', (m) => { if (m.type() === 'error') console.error('[carol]', m.text()); });
  const { panel: s, link } = await signInAndStart(carol, base, csrUser, password, 'Mouse does not click');

  const dave = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
  dave.on('console', (m) => { if (m.type() === 'error') console.error('[dave]', m.text()); });
  await joinByLink(dave, base, link, 'Dave');
  await s.getByText('Dave joined').waitFor();
  check(!/control|mouse/i.test(await visible(dave)), 'before anything is asked, Dave\'s page speaks of no control');

  // Carol asks for control; Dave has no helper.
  await s.getByRole('tab', { name: 'Desktop' }).click();
  await s.getByRole('button', { name: "Control customer's desktop" }).click();
  await carol.getByText(/Dave needs to run Tandem Helper before you can use their mouse and keyboard/).waitFor();
  await s.getByText('Waiting for Dave to run Tandem Helper (their page offers it).').waitFor();
  const offer = dave.getByRole('region', { name: 'Tandem Helper' });
  await offer.getByText('To let Carol use your mouse and keyboard, run Tandem Helper.').waitFor();
  await offer.getByText('Waiting for Tandem Helper...').waitFor();
  check(!(await dave.getByRole('dialog', { name: 'Permission requested' }).isVisible()),
    'Dave is not asked on the page to allow what the page cannot do');
  const text = await visible(dave);
  results.offer = text;
  check(!/control/i.test(text), 'Dave\'s page never says he will be controlled');
  check(!/mouse and keyboard will|controls? your mouse/i.test(text), 'no promise of control');
  const code = (await dave.locator('#helper-code').textContent()).trim();
  results.code = code;
  check(/^\d{4} \d{4}$/.test(code), `the code is shown as 1234 5678: ${code}`);
  check(/works once, until \d/.test(await dave.locator('#helper-expiry').textContent()), 'the code\'s expiry is shown');
  // The download: the built binary with its SHA-256, or (a server built without it) a plain
  // sentence saying so.
  const download = await api('GET', '/api/helper/download').catch(() => null);
  if (download) {
    check(await dave.getByRole('link', { name: 'Download Tandem Helper' }).getAttribute('href') === download.url, 'the download link');
    check((await dave.locator('#helper-sha').textContent()) === download.sha256, 'the SHA-256 beside the link');
  } else {
    await offer.getByText('This server has no Tandem Helper to download; ask your support representative.').waitFor();
  }
  await shot(dave, 'customer-helper-offer');

  // The test plays Tandem Helper: the code from the page pairs it.
  const paired = await api('POST', '/api/helper/join', { code });
  check(paired.participant.name === "Dave's computer", 'the helper joins as Dave\'s computer');
  const helper = await (await browser.newContext()).newPage();
  await helper.goto(`${base}/join`);
  await helper.evaluate((token) => new Promise((resolve, reject) => {
    window.frames_in = [];
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    window.ws = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`);
    window.ws.onmessage = (e) => window.frames_in.push(JSON.parse(e.data));
    window.ws.onopen = resolve;
    window.ws.onerror = reject;
  }), paired.token);
  await offer.getByRole('listitem').filter({ hasText: "Carol asks to use your mouse and keyboard through Tandem Helper. The question is in Tandem Helper's window." }).waitFor();
  await dave.locator('#helper-offer').waitFor({ state: 'hidden' });
  let asked = null;
  for (let i = 0; i < 100 && !asked; i++) {
    // A question asked as the helper attaches is in its welcome; later ones come as events.
    asked = await helper.evaluate(() => window.frames_in.flatMap((f) => (f.type === 'welcome' ? f.session.pending_consents
      : f.event?.type === 'consent_requested' ? [f.event] : []))[0]);
    if (!asked) await sleep(100);
  }
  check(asked?.activity === 'control_desktop' && asked?.computer === paired.participant.id, `the helper is asked: ${JSON.stringify(asked)}`);
  check(!(await dave.getByRole('dialog', { name: 'Permission requested' }).isVisible()), 'Dave\'s page still asks nothing itself');
  check(await offer.getByRole('button', { name: 'Refuse' }).isVisible(), 'Dave may still refuse from the page');
  await shot(dave, 'customer-question-in-helper');

  // The customer answers in the helper's window (played here): control runs.
  await helper.evaluate((request) => window.ws.send(JSON.stringify({ type: 'consent_reply', request, grant: true })), asked.request);
  await dave.getByText('Carol sees your screen and uses your mouse and keyboard through Tandem Helper.').waitFor();
  await s.getByText('Controlling the desktop of Dave.').waitFor();
  // And Dave stops it from the page.
  await dave.getByRole('button', { name: 'Stop sharing' }).click();
  await dave.getByRole('button', { name: 'Stop sharing' }).waitFor({ state: 'hidden' });
  await s.getByText('Dave is not sharing.').waitFor();
});
