// The primary CSR removes a customer (issue 15: a stranger who joined with the session number),
// in Debian's headless Chromium:
// - Carol (CSR) signs in and starts a session; Dave opens the invite link and joins.
// - Carol presses Remove on Dave's entry, is asked to confirm, and confirms.
// - Dave's page says in a plain sentence that he was removed (no raw code); Carol's list no
//   longer has him.
// Usage: node remove.mjs BASE_URL CSR PASSWORD   (run by tests/browser_consoles.rs)

import { scenario, signInAndStart, joinByLink } from './harness.mjs';

const [base, csrUser, password] = process.argv.slice(2);

await scenario('remove', [], async ({ browser, check, results, shot }) => {
  const carol = await (await browser.newContext({ viewport: { width: 1280, height: 720 } })).newPage();
  carol.on('console', (m) => { if (m.type() === 'error') console.error('[carol]', m.text()); });
  const { panel: s, link } = await signInAndStart(carol, base, csrUser, password, 'Printer offline');
  check(await s.getByRole('button', { name: /^Remove .* from the session$/ }).count() === 0, 'Carol is offered no button to remove herself');

  const dave = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
  dave.on('console', (m) => { if (m.type() === 'error') console.error('[dave]', m.text()); });
  await joinByLink(dave, base, link, 'Dave');

  const remove = s.getByRole('button', { name: 'Remove Dave from the session' });
  await remove.click();
  const confirm = carol.getByRole('dialog', { name: 'Remove a participant' });
  await confirm.waitFor();
  // Cancelling keeps him.
  await confirm.getByRole('button', { name: 'Keep them in the session' }).click();
  check(await remove.count() === 1, 'cancelling keeps Dave in the session');
  await remove.click();
  await confirm.getByRole('button', { name: 'Remove', exact: true }).click();
  await carol.getByText('Dave was removed.').waitFor();
  await dave.getByText('The support representative removed you from this session.').waitFor();
  const status = await dave.locator('#status').textContent();
  results.dave = status;
  check(!/removed\)|_/.test(status), `Dave sees a plain sentence: ${status}`);
  check(await s.locator('.people').getByText(/Dave/).count() === 0, 'Dave is no longer listed on Carol\'s page');
  await shot(carol, 'csr-console-participant-removed');
  await shot(dave, 'customer-removed');
});
