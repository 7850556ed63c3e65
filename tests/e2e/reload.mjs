// Issue 18, item 2: a reload keeps the CSR signed in with the session's tab back, and Sign out
// ends the sign-in. Carol starts a session, Dave joins and writes; Carol reloads her console:
// she is still signed in, the session's tab is back with Dave's line in its chat, Dave's page
// said she was away and then back, and the session goes on. Sign out (confirmed) ends the
// session she leads and shows the sign-in form, also after another reload.
// Usage: node reload.mjs BASE_URL CSR PASSWORD   (run by tests/browser_consoles.rs)

import { scenario, signInAndStart, joinByLink } from './harness.mjs';

const [base, csrUser, password] = process.argv.slice(2);

await scenario('reload', [], async ({ browser, check, results, shot }) => {
  const carol = await (await browser.newContext({ viewport: { width: 1280, height: 720 } })).newPage();
  const dave = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
  for (const [who, p] of [['carol', carol], ['dave', dave]]) {
    p.on('console', (m) => { if (m.type() === 'error') console.error(`[${who}]`, m.text()); });
  }
  const { link } = await signInAndStart(carol, base, csrUser, password, 'Reload test');
  await joinByLink(dave, base, link, 'Dave');
  const daveChat = dave.locator('#chat-section');
  await daveChat.getByLabel('Message', { exact: true }).fill('hello before the reload');
  await daveChat.getByLabel('Message', { exact: true }).press('Enter');
  const before = carol.getByRole('tabpanel', { name: /Reload test/ });
  await before.locator('.chat-log').getByText('hello before the reload').waitFor();

  await carol.reload();
  await carol.getByText('Welcome back: your session is open again.').waitFor();
  check(await carol.locator('#signin').isHidden(), 'still signed in after the reload');
  await carol.getByText('Signed in as Carol').waitFor();
  await carol.getByRole('tab', { name: /Reload test/ }).waitFor();
  const s = carol.getByRole('tabpanel', { name: /Reload test/ });
  await s.locator('.chat-log').getByText('hello before the reload').waitFor();
  check(await s.locator('.chat-log').getByText('hello before the reload').count() === 1, 'the line is shown once');
  await s.getByText('Dave · customer').waitFor();
  await dave.locator('#connection').getByText('Carol is connected again.').waitFor();
  await shot(carol, 'reload-csr-back');
  await s.locator('.chat').getByLabel('Message', { exact: true }).fill('still here after the reload');
  await s.locator('.chat').getByLabel('Message', { exact: true }).press('Enter');
  await dave.locator('.chat-log').getByText('still here after the reload').waitFor();

  // Sign out: confirmed, the session Carol leads ends, the sign-in form is back, and the
  // token the tab held no longer works on the server.
  const token = await carol.evaluate(() => JSON.parse(sessionStorage.getItem('tandem.console')).account.token);
  carol.once('dialog', (d) => {
    results.sign_out_question = d.message();
    d.accept();
  });
  await carol.getByRole('button', { name: 'Sign out', exact: true }).click();
  await carol.getByRole('button', { name: 'Sign in' }).waitFor();
  await dave.getByText('The support session has ended. Thank you.').waitFor();
  await carol.reload();
  await carol.getByRole('button', { name: 'Sign in' }).waitFor();
  check(await carol.locator('#dashboard').isHidden(), 'signed out stays signed out after a reload');
  const me = await carol.evaluate(async (t) => {
    const r = await fetch('/api/me', { headers: { Authorization: `Bearer ${t}` } });
    return { status: r.status, code: (await r.json()).code };
  }, token);
  results.token_after_sign_out = me;
  check(me.status === 401 && me.code === 'signed_out', `the signed-out token is refused: ${JSON.stringify(me)}`);
});
