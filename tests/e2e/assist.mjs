// Issue 18, item 9: the assistant invite link is no dead end. Carol makes one; Ann opens it:
// the console asks her to sign in, and once she has, she is in Carol's session as an
// assistant, in a tab of its own.
// Usage: node assist.mjs BASE_URL CSR ASSISTANT PASSWORD   (run by tests/browser_consoles.rs)

import { scenario, signInAndStart } from './harness.mjs';

const [base, csrUser, assistantUser, password] = process.argv.slice(2);

await scenario('assist', [], async ({ browser, check, results, shot }) => {
  const carol = await (await browser.newContext({ viewport: { width: 1280, height: 720 } })).newPage();
  const ann = await (await browser.newContext({ viewport: { width: 1280, height: 720 } })).newPage();
  for (const [who, p] of [['carol', carol], ['ann', ann]]) {
    p.on('console', (m) => { if (m.type() === 'error') console.error(`[${who}]`, m.text()); });
  }
  const { panel: s } = await signInAndStart(carol, base, csrUser, password, 'Needs a second pair of eyes');
  await s.getByRole('button', { name: 'Make an assistant invite link' }).click();
  await s.getByLabel('Link for an assistant').waitFor(); // shown once it is made
  const link = await s.getByLabel('Link for an assistant').inputValue();
  results.link = link;
  check(/\/j\/[0-9a-z]{10}$/.test(link), `the assistant's link is short: ${link}`);

  // It leads to the console (/?assist=…), which keeps the invite through the sign-in.
  await ann.goto(`${base}${new URL(link).pathname}`);
  check(new URL(ann.url()).pathname === '/', `the assistant's link opens the console: ${ann.url()}`);
  await ann.getByText('You were invited to assist in a session: sign in, and it opens.').waitFor();
  check(!ann.url().includes('assist='), 'the invite left the address bar');
  await ann.getByLabel('Username').fill(assistantUser);
  await ann.getByLabel('Password', { exact: true }).fill(password);
  await ann.getByRole('button', { name: 'Sign in' }).click();
  await ann.getByText(/^You are assisting in session \d{9}, as you were invited\.$/).waitFor();
  const a = ann.getByRole('tabpanel', { name: /Needs a second pair of eyes/ });
  await a.getByText(/you are assisting; Carol is in charge/).waitFor();
  await s.getByText('Ann joined').waitFor();
  await shot(ann, 'assistant-joined-by-link');
});
