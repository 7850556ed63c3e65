// Account access on the console, in Debian's headless Chromium:
// - Root (admin) sees the Accounts card. She presses "Disable carol" and cancels the
//   confirmation: nothing changes. She presses it again and confirms: carol is listed disabled,
//   and carol's open console is refused at once (its next call says the account is disabled).
// - Root enables carol again; carol signs in again and presses "Sign out everywhere", confirms,
//   and is back at the sign-in form; her earlier token no longer works.
// - Root revokes carol's sessions with "Revoke sessions of carol" (confirmed): carol's new
//   sign-in stops working too.
// Usage: node accounts.mjs BASE_URL ADMIN CSR PASSWORD   (run by tests/server/accounts.rs)

import { apiClient, scenario } from './harness.mjs';

const [base, adminUser, csrUser, password] = process.argv.slice(2);
const api = apiClient(base);

async function signIn(browser, user) {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.error(`[${user}]`, m.text()); });
  await page.goto(`${base}/`);
  await page.getByLabel('Username').fill(user);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText(`Signed in as ${user}.`).waitFor();
  return page;
}

// Answers the next confirmation dialog of `page`.
const answerNext = (page, accept) => page.once('dialog', (d) => (accept ? d.accept() : d.dismiss()));

await scenario('accounts', [], async ({ browser, check, results, shot }) => {
  const root = await signIn(browser, adminUser);
  const carol = await signIn(browser, csrUser);
  const card = root.getByRole('region', { name: 'Accounts' });
  const carolItem = card.getByRole('listitem').filter({ hasText: `(${csrUser},` });
  await carolItem.waitFor();
  check(!(await card.getByRole('button', { name: `Disable ${adminUser}` }).count()), 'the admin is not offered to disable herself');

  // The confirmation is synchronous: a request, if any, would start before the click returns.
  let changes = 0;
  root.on('request', (r) => { if (['PATCH', 'POST'].includes(r.method()) && r.url().includes('/api/users/')) changes += 1; });
  answerNext(root, false);
  await card.getByRole('button', { name: `Disable ${csrUser}` }).click();
  check(changes === 0, 'a cancelled confirmation sends nothing');

  answerNext(root, true);
  await card.getByRole('button', { name: `Disable ${csrUser}` }).click();
  await carolItem.getByText(/· disabled/).waitFor();
  results.disabled = await carolItem.textContent();
  await shot(root, 'admin-console-accounts');
  await carol.getByText('this account is disabled').waitFor();

  answerNext(root, true);
  await card.getByRole('button', { name: `Enable ${csrUser}` }).click();
  await card.getByRole('button', { name: `Disable ${csrUser}` }).waitFor();

  const again = await signIn(browser, csrUser);
  const before = (await api('POST', '/api/login', { username: csrUser, password })).token;
  answerNext(again, true);
  await again.getByRole('button', { name: 'Sign out everywhere' }).click();
  await again.getByRole('button', { name: 'Sign in' }).waitFor();
  check(await again.getByRole('button', { name: 'Sign out everywhere' }).isHidden(), 'back at the sign-in form');
  const refused = await api('GET', '/api/me', null, before).then(() => 'accepted', (e) => e.message);
  results.after_sign_out = refused;
  check(refused.includes('token_revoked'), `a token from before signing out everywhere is refused: ${refused}`);

  const fresh = (await api('POST', '/api/login', { username: csrUser, password })).token;
  answerNext(root, true);
  await card.getByRole('button', { name: `Revoke sessions of ${csrUser}` }).click();
  await root.getByText(`${csrUser} is signed out everywhere.`).waitFor();
  const revoked = await api('GET', '/api/me', null, fresh).then(() => 'accepted', (e) => e.message);
  check(revoked.includes('token_revoked'), `an admin's revoke refuses the account's tokens: ${revoked}`);
});
