// Automatic recording on the consoles (SPEC R3 with S9), in Debian's headless Chromium, with the
// admin's setting already on:
// - Carol (CSR) signs in and starts a session; her Session tab says recording is automatic and
//   waits for the customer.
// - Dave opens the invite link and joins; he is asked at once to allow recording, and told that
//   the site records its sessions when he allows it. He allows.
// - Carol's page says the session is recorded automatically and offers no way to stop it; she
//   ends the session, and the recording is listed on her dashboard.
// Usage: node autorecord.mjs BASE_URL CSR PASSWORD   (run by tests/browser_consoles.rs)

import { scenario, signInAndStart } from './harness.mjs';

const [base, csrUser, password] = process.argv.slice(2);

await scenario('autorecord', [], async ({ browser, check, results, shot }) => {
  const carol = await (await browser.newContext({ viewport: { width: 1280, height: 720 } })).newPage();
  carol.on('console', (m) => { if (m.type() === 'error') console.error('[carol]', m.text()); });
  const { panel: s, link } = await signInAndStart(carol, base, csrUser, password, 'Laptop setup');
  await s.getByRole('tab', { name: 'Session' }).click();
  await s.getByText('Recording is automatic, but the customer has not allowed it.').waitFor();

  // Dave is asked on joining, before anyone presses anything.
  const dave = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
  dave.on('console', (m) => { if (m.type() === 'error') console.error('[dave]', m.text()); });
  const invite = new URL(link);
  await dave.goto(`${base}${invite.pathname}${invite.search}`);
  await dave.getByLabel('Your name').fill('Dave');
  await dave.getByLabel('Your name').press('Enter');
  const dialog = dave.getByRole('dialog', { name: 'Permission requested' });
  await dialog.waitFor();
  const asked = await dialog.textContent();
  results.asked = asked;
  check(asked.includes('record this session'), `Dave is asked to allow recording: ${asked}`);
  check(asked.includes('records its support sessions'), `Dave is told recording is automatic: ${asked}`);
  await s.getByText('Recording is automatic: waiting for the customer to allow it.').waitFor();
  check(await s.getByRole('button', { name: 'Stop recording' }).count() === 0, 'nothing to stop before it runs');
  await dialog.getByRole('button', { name: 'Allow' }).click();

  // Recording, with no way for Carol to stop it.
  await s.getByText('Recording automatically: the session is recorded until it ends; it cannot be stopped.').waitFor();
  check(await s.getByRole('button', { name: 'Stop recording' }).count() === 0, 'the CSR is offered no "Stop recording"');
  check(await s.getByRole('button', { name: 'Record session' }).count() === 0, 'the CSR is offered no second recording');
  await shot(carol, 'csr-console-automatic-recording');

  await s.getByRole('button', { name: 'End session' }).click();
  await carol.getByRole('dialog', { name: 'Review your notes' }).getByRole('button', { name: 'End session now' }).click();
  await carol.getByText('The session has ended').waitFor();
  await carol.getByRole('tab', { name: 'Dashboard' }).click();
  await carol.locator('#recording-list').getByText(/Laptop setup · session \d{9}/).waitFor();
});
