// SPEC M5, the customer's page reopened by Tandem Helper after the computer restarted:
// /join#resume=<token> connects as the same customer without the join form, says so in a
// sentence, and takes the token out of the address bar.
// Usage: node resume.mjs BASE_URL TOKEN NUMBER PASSWORD   (run by tests/browser_consoles.rs)

import { scenario } from './harness.mjs';

const [base, token, number] = process.argv.slice(2);

await scenario('resume', [], async ({ browser, check, results, shot }) => {
  const dave = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
  dave.on('console', (m) => { if (m.type() === 'error') console.error('[dave]', m.text()); });
  await dave.goto(`${base}/join#resume=${token}`);
  await dave.getByText('Your computer restarted: you are back in the support session.').waitFor();
  await dave.getByRole('heading', { name: `Support session ${number}` }).waitFor();
  check(await dave.locator('#join').isHidden(), 'no join form: Dave is back as himself');
  check(!dave.url().includes('resume'), `the token left the address bar: ${dave.url()}`);
  await dave.getByText('Dave (you)').waitFor();
  results.people = await dave.locator('.people').innerText();
  await shot(dave, 'customer-resumed');
});
