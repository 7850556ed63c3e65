// A CSR's softphone on the console (SPEC V5), in Debian's headless Chromium:
// - Carol (CSR) signs in; her dashboard's Softphone card says she has no SIP password and
//   where a softphone registers.
// - She tries a SIP password with a wrong sign-in password to confirm it: refused, with the
//   reason shown. She tries her sign-in password as the SIP password: refused too.
// - She sets another, confirmed with her sign-in password; the card says it is set. The Rust side of the test (tests/server/sip/softphone.rs) then
//   registers sipp as her softphone with it, and the card lists that registration.
// - She starts a session and presses "Call my softphone": the softphone (sipp answering)
//   joins her session as "Carol (phone)", which her page says and lists; she ends the session.
// - She removes the SIP password: the card says so and the registration is gone.
// Usage: node softphone.mjs BASE_URL CSR PASSWORD   (run by tests/server/sip/softphone.rs, which registers
// sipp with the SIP password below)

import { scenario } from './harness.mjs';

const [base, csrUser, password] = process.argv.slice(2);
const sipPassword = 'carol softphone 7';

await scenario('softphone', [], async ({ browser, check, results, shot }) => {
  const carol = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  carol.on('console', (m) => { if (m.type() === 'error') console.error('[carol]', m.text()); });
  await carol.goto(`${base}/`);
  await carol.getByLabel('Username').fill(csrUser);
  await carol.getByLabel('Password', { exact: true }).fill(password);
  await carol.getByRole('button', { name: 'Sign in' }).click();
  const card = carol.getByRole('region', { name: 'Softphone' });
  await card.getByText(/^No SIP password yet\. Register your softphone as sip:/).waitFor();
  results.before = await card.locator('#softphone-status').textContent();

  const field = card.getByLabel('New SIP password (not your sign-in password)');
  const confirm = card.getByLabel('Your sign-in password, to confirm it is you');
  await field.fill(sipPassword);
  await confirm.fill('not my password');
  await card.getByRole('button', { name: 'Set SIP password' }).click();
  await carol.getByText('the sign-in password is not right').waitFor();
  await field.fill(password);
  await confirm.fill(password);
  await card.getByRole('button', { name: 'Set SIP password' }).click();
  await carol.getByText('choose a SIP password other than the sign-in password').waitFor();
  check((await card.locator('#softphone-status').textContent()).startsWith('No SIP password yet.'), 'the refused passwords were not set');

  await field.fill(sipPassword);
  await confirm.fill(password);
  await card.getByRole('button', { name: 'Set SIP password' }).click();
  await card.locator('#softphone-status', { hasText: /^SIP password set\./ }).waitFor();
  await card.getByText('No softphone registered.').waitFor();

  // The test registers sipp now; the card shows it once refreshed.
  const registered = card.getByRole('list', { name: 'Registered softphones' }).getByText(/^sipp softphone at sip:/);
  for (let i = 0; i < 150 && !(await registered.count()); i += 1) {
    await card.getByRole('button', { name: 'Refresh softphone' }).click();
    await carol.waitForTimeout(200);
  }
  await registered.waitFor({ timeout: 1000 });
  results.registered = await registered.textContent();
  await shot(carol, 'csr-console-softphone');

  await carol.getByLabel('Topic').fill('Desk phone');
  await carol.getByRole('button', { name: 'Start session' }).click();
  await carol.getByText(/Session \d{9} started/).waitFor();
  const session = carol.getByRole('tabpanel', { name: /Desk phone/ });
  await session.getByRole('button', { name: 'Call my softphone' }).click();
  await carol.getByText('Your softphone joined as Carol (phone).').waitFor({ timeout: 40000 });
  await session.getByRole('region', { name: 'Participants' }).getByText('Carol (phone)').first().waitFor();
  await shot(carol, 'csr-console-softphone-in-session');
  await session.getByRole('tab', { name: 'Session' }).click();
  await session.getByRole('button', { name: 'End session' }).click();
  await carol.getByRole('dialog', { name: 'Review your notes' }).getByRole('button', { name: 'End session now' }).click();
  await carol.getByText('The session has ended').waitFor();
  await carol.getByRole('tab', { name: 'Dashboard' }).click();

  await card.getByRole('button', { name: 'Remove SIP password' }).click();
  await card.getByText(/^No SIP password yet\./).waitFor();
  check(await registered.count() === 0, 'the registration went with the password');
  check(await card.getByRole('button', { name: 'Remove SIP password' }).isHidden(), 'nothing left to remove');
});
