// The consoles as a person uses them (issue 4, first part; SPEC S1, S4, S9, S10, S11, S12):
// Carol signs in on the CSR console, starts a session and copies the invite link; Dave opens
// it on a phone-sized page and joins; they chat both ways; Carol asks to view Dave's desktop,
// Dave declines, Carol asks again, Dave allows; Carol ends the session with notes, and the
// stored report has them. Controls are found by role and accessible name. Screenshots of each
// console go to tests/e2e/artifacts/.
// Usage: node consoles.mjs BASE_URL USERNAME PASSWORD   (run by tests/browser_consoles.rs)

import fs from 'node:fs';
import path from 'node:path';
import { launch } from './harness.mjs';

const [base, username, password] = process.argv.slice(2);
const here = path.dirname(new URL(import.meta.url).pathname);
const shots = path.join(here, 'artifacts');
fs.mkdirSync(shots, { recursive: true });

const failures = [];
const results = {};
const check = (ok, what) => { if (!ok) failures.push(what); };
const browser = await launch();
try {
  const csrCtx = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const carol = await csrCtx.newPage();
  carol.on('console', (m) => { if (m.type() === 'error') console.error('[carol]', m.text()); });
  await carol.goto(`${base}/`);
  await carol.getByLabel('Username').fill(username);
  await carol.getByLabel('Password').fill(password);
  await carol.getByRole('button', { name: 'Sign in' }).click();
  await carol.getByLabel('Topic').fill('Printer offline');
  await carol.getByRole('button', { name: 'Start session' }).click();
  await carol.getByText(/Session \d{9} started/).waitFor();
  const link = await carol.getByLabel('Invite link').inputValue();
  check(link.includes('/join?invite='), `an invite link is shown: ${link}`);
  await carol.screenshot({ path: path.join(shots, 'csr-console-started.png') });

  // The configured public address is not this test server's: keep the link's path and query.
  const invite = new URL(link);
  const custCtx = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const dave = await custCtx.newPage();
  dave.on('console', (m) => { if (m.type() === 'error') console.error('[dave]', m.text()); });
  await dave.goto(`${base}${invite.pathname}${invite.search}`);
  check(!(await dave.getByLabel('Session number').isVisible()), 'the invite link needs no session number');
  await dave.getByLabel('Your name').fill('Dave');
  await dave.getByRole('button', { name: 'Join session' }).click();
  await carol.getByText('Dave joined').waitFor();

  // Chat both ways.
  await dave.getByLabel('Message').fill('My printer says offline');
  await dave.getByRole('button', { name: 'Send' }).click();
  await carol.getByText('My printer says offline').waitFor();
  await carol.getByLabel('Message').fill('Let me have a look');
  await carol.getByLabel('Message').press('Enter');
  await dave.getByText('Let me have a look').waitFor();

  // Consent: declined, then allowed (S9).
  await carol.getByRole('button', { name: "View customer's desktop" }).click();
  const dialog = dave.getByRole('dialog', { name: 'Permission requested' });
  await dialog.waitFor();
  check((await dialog.textContent()).includes('see your screen'), 'the customer is told what is asked');
  await dave.screenshot({ path: path.join(shots, 'customer-consent.png') });
  await dialog.getByRole('button', { name: 'Deny' }).click();
  await carol.getByText('The customer declined.').waitFor();
  await carol.getByRole('button', { name: "View customer's desktop" }).click();
  await dialog.waitFor();
  // Keyboard only: the dialog opens with Allow focused.
  await dave.keyboard.press('Enter');
  await carol.getByText('Viewing the customer\'s desktop').waitFor();
  await dave.screenshot({ path: path.join(shots, 'customer-session.png') });

  // End with notes (S11, S12).
  await carol.getByLabel('Session notes').fill('Printer driver reinstalled');
  await carol.getByRole('button', { name: 'End session' }).click();
  await carol.getByText('The session has ended').waitFor();
  await dave.getByText('The support session has ended').waitFor();
  await carol.screenshot({ path: path.join(shots, 'csr-console-ended.png') });
  results.link = link;
} catch (e) {
  failures.push(String(e && e.stack || e));
} finally {
  await browser.close();
}
console.log(JSON.stringify({ results, failures }));
process.exit(failures.length ? 1 : 0);
