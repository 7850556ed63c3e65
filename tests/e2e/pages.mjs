// Issue 18, "Must show": every page a person sees, at 1280x720 and at 390x844, saved as
// tests/e2e/artifacts/page-<name>-<w>x<h>.png and checked with axe-core (WCAG 2 A and AA: the
// contrast of text and controls, names and labels, structure); any violation fails, listed with
// its rule, impact and the elements it is about. And the main flows with the keyboard only:
// - Carol (CSR) reaches the sign-in fields with Tab, signs in, starts a session, and jumps to the
//   chat from the icon bar to write a line; nothing is clicked.
// - Dave (customer) opens /join, tabs to the session number, types it and his name, joins with
//   Enter, and answers in the chat with the keyboard.
// Pages: the sign-in, the dashboard of a CSR, an agent and an admin (each sees other cards), the
// join page (by number, and by an invite link), the live session on both sides (chat, voice
// call with the microphone muted from the icon bar, the customer's permission question, the
// shared screen in the CSR's viewer), the CSR's end-of-session review, and the ended session on
// both sides (the CSR's report, the customer's farewell).
// Usage: node pages.mjs BASE_URL CSR AGENT ADMIN PASSWORD   (run by tests/browser_consoles.rs)

import fs from 'node:fs';
import path from 'node:path';
import { scenario, until, videoFrames } from './harness.mjs';

const [base, csrUser, agentUser, adminUser, password] = process.argv.slice(2);
const here = path.dirname(new URL(import.meta.url).pathname);
const axeSource = fs.readFileSync(path.join(here, 'node_modules/axe-core/axe.min.js'), 'utf8');
const SIZES = [[1280, 720], [390, 844]];

await scenario('pages', ['--auto-select-desktop-capture-source=Entire screen'], async ({ browser, check, results, shot }) => {
  results.axe = {};
  results.heights = {}; // how tall each page is, to compare layouts (docs/consoles.md)
  // Screenshots of `page` at both sizes, each checked with axe-core; back to its own size after.
  const audit = async (page, name) => {
    const own = page.viewportSize();
    for (const [width, height] of SIZES) {
      await page.setViewportSize({ width, height });
      await shot(page, `page-${name}-${width}x${height}`);
      results.heights[`${name}-${width}x${height}`] = await page.evaluate(() => document.documentElement.scrollHeight);
      // Evaluated through the DevTools protocol, so the pages' Content-Security-Policy (no
      // inline scripts) does not stop it.
      if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(axeSource);
      const violations = await page.evaluate(async () => {
        const r = await window.axe.run(document, {
          runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa'] },
          resultTypes: ['violations'],
        });
        return r.violations.map((v) => ({
          id: v.id,
          impact: v.impact,
          nodes: v.nodes.map((n) => `${n.target.join(' ')}${n.failureSummary ? ` (${n.failureSummary.replace(/\s+/g, ' ').trim()})` : ''}`),
        }));
      });
      results.axe[`${name}-${width}x${height}`] = violations.length;
      for (const v of violations) {
        check(false, `axe on ${name} at ${width}x${height}: ${v.id} (${v.impact}) on ${v.nodes.join('; ')}`);
      }
    }
    await page.setViewportSize(own);
  };
  // Presses Tab until `locator` has the focus; fails if it is not reached in `max` presses.
  const tabTo = async (page, locator, what, max = 60) => {
    const handle = await locator.elementHandle();
    for (let i = 0; i < max; i += 1) {
      await page.keyboard.press('Tab');
      if (await handle.evaluate((el) => el === document.activeElement)) return;
    }
    throw new Error(`${what} is not reached with Tab`);
  };
  const focused = (locator) => locator.evaluate((el) => el === document.activeElement);
  const newPage = async (who, width, height) => {
    const p = await (await browser.newContext({ viewport: { width, height } })).newPage();
    p.on('console', (m) => { if (m.type() === 'error') console.error(`[${who}]`, m.text()); });
    return p;
  };

  // The sign-in page, then Carol signs in and starts a session with the keyboard only.
  const carol = await newPage('carol', 1280, 720);
  await carol.goto(`${base}/`);
  await carol.getByRole('button', { name: 'Sign in' }).waitFor();
  await audit(carol, 'signin');
  await tabTo(carol, carol.getByLabel('Username'), 'the username field');
  await carol.keyboard.type(csrUser);
  await carol.keyboard.press('Tab');
  check(await focused(carol.getByLabel('Password', { exact: true })), 'Tab moves from the username to the password');
  await carol.keyboard.type(password);
  await carol.keyboard.press('Enter');
  await carol.getByText('Signed in as Carol', { exact: true }).waitFor();
  await carol.locator('#softphone-status:not(:empty)').waitFor();
  await carol.locator('#script-table').waitFor();
  check(await focused(carol.getByLabel('Topic')), 'after sign-in the topic field has the focus');
  await audit(carol, 'dashboard-csr'); // resizing and screenshots leave the focus where it is
  await carol.keyboard.type('Printer offline');
  await carol.keyboard.press('Enter');
  await carol.getByText(/Session \d{9} started/).waitFor();
  const s = carol.getByRole('tabpanel', { name: /Printer offline/ });
  const number = (await s.locator('.number').textContent()).replace(/\s/g, '');
  const link = await s.getByLabel('Invite link').inputValue();

  // The join page by an invite link (name only), then by number, where Dave joins with the keyboard.
  const dave = await newPage('dave', 390, 844);
  const invite = new URL(link);
  await dave.goto(`${base}${invite.pathname}${invite.search}`);
  await dave.getByLabel('Your name').waitFor();
  await audit(dave, 'join-invite');
  await dave.goto(`${base}/join`);
  await dave.getByLabel('Session number').waitFor();
  await audit(dave, 'join-number');
  await tabTo(dave, dave.getByLabel('Session number'), 'the session number field');
  await dave.keyboard.type(number);
  await dave.keyboard.press('Tab');
  check(await focused(dave.getByLabel('Your name')), 'Tab moves from the number to the name');
  await dave.keyboard.type('Dave');
  await dave.keyboard.press('Enter');
  await dave.getByText('You are in the session.').waitFor();
  await s.getByText('Dave · customer').waitFor();

  // Chat with the keyboard: Carol from the icon bar's "Jump to chat", Dave in his message field.
  await tabTo(carol, s.getByRole('button', { name: 'Jump to chat' }), 'the icon bar');
  await carol.keyboard.press('Enter');
  check(await focused(s.locator('.chat').getByLabel('Message', { exact: true })), 'Jump to chat puts the focus in the message field');
  await carol.keyboard.type('Hello Dave, how can I help?');
  await carol.keyboard.press('Enter');
  await dave.locator('.chat-log').getByText('Hello Dave, how can I help?').waitFor();
  const daveMessage = dave.locator('#chat-section').getByLabel('Message', { exact: true });
  if (!(await focused(daveMessage))) await tabTo(dave, daveMessage, "the customer's message field");
  await dave.keyboard.type('My printer says offline');
  await dave.keyboard.press('Enter');
  await s.locator('.chat-log').getByText('My printer says offline').waitFor();
  results.keyboard = 'signed in, started, joined by number and chatted with the keyboard only';

  // The live session with a voice call: both sides.
  await s.getByRole('button', { name: 'Start voice call' }).click();
  await s.locator('.chat-log').getByText('Carol (you) joined the voice call').waitFor();
  await dave.getByRole('button', { name: 'Join voice call' }).first().click();
  await s.locator('.chat-log').getByText('Dave joined the voice call').waitFor();
  // Muted from the icon bar with the keyboard: pressed, and the microphone drawn struck through.
  const mute = s.getByRole('button', { name: 'Mute microphone' });
  await mute.focus();
  await carol.keyboard.press('Enter');
  await carol.locator('#status').getByText('Your microphone is muted.').waitFor();
  check(await mute.getAttribute('aria-pressed') === 'true', 'the mute button shows it is pressed');
  check(await mute.locator('svg .muted').isVisible(), 'the muted microphone is struck through');
  await audit(carol, 'session-csr');
  await audit(dave, 'session-customer');
  await carol.keyboard.press('Enter');
  await carol.locator('#status').getByText('Your microphone is on.').waitFor();
  check(await mute.locator('svg .muted').isHidden(), 'the microphone is drawn whole again');

  // The customer's permission question, answered with the keyboard.
  await s.getByRole('tab', { name: 'Desktop' }).click();
  await s.getByRole('button', { name: "View customer's desktop" }).click();
  const consent = dave.getByRole('dialog', { name: 'Permission requested' });
  await consent.waitFor();
  await audit(dave, 'consent-customer');
  check(await focused(consent.getByRole('button', { name: 'Allow' })), 'Allow has the focus in the question');
  await dave.keyboard.press('Tab');
  await dave.keyboard.press('Enter'); // Deny
  await carol.getByText('Dave declined.').waitFor();
  await s.getByRole('button', { name: "View customer's desktop" }).click();
  await consent.waitFor();
  await dave.keyboard.press('Enter'); // Allow has the focus
  await s.getByText('Viewing the desktop of Dave.').waitFor();
  await dave.locator('#share-state').getByText('Carol sees what you share.').waitFor();
  await until(async () => (await videoFrames(carol, "Dave's shared screen")) > 2, "Dave's screen shows on Carol's page");
  // "Jump to the shared screen" from the icon bar puts the focus on it.
  await s.getByRole('button', { name: 'Jump to the shared screen' }).focus();
  await carol.keyboard.press('Enter');
  check(await focused(s.locator('.stage')), 'Jump to the shared screen focuses the shared screen');
  await audit(carol, 'viewing-csr');
  // Issue 18 item 8: at 1280x720 the session fits the window, the shared screen large and in
  // view, the tabs beside it.
  for (const name of ['session-csr', 'viewing-csr']) {
    check(results.heights[`${name}-1280x720`] <= 720, `the ${name} page fits 1280x720 without scrolling (${results.heights[`${name}-1280x720`]} px tall)`);
  }
  const fits = await carol.evaluate(() => {
    const box = (sel) => document.querySelector(`.session:not([hidden]) ${sel}`).getBoundingClientRect();
    const stage = box('.stage');
    const tabs = box('.tools-tabs');
    return { stage: [stage.left, stage.top, stage.width, stage.height], tabs: [tabs.left, tabs.top], inView: stage.top >= 0 && stage.bottom <= innerHeight };
  });
  results.layout = fits;
  check(fits.inView && fits.stage[2] >= 500 && fits.stage[3] >= 300, `the shared screen is large and in view: ${JSON.stringify(fits)}`);
  check(fits.tabs[0] >= fits.stage[0] + fits.stage[2] && fits.tabs[1] < fits.stage[1] + fits.stage[3], 'the tools\' tabs are beside the shared screen');
  await audit(dave, 'sharing-customer');

  // The end: the review of the notes, then the ended session on both sides.
  await s.getByRole('tab', { name: 'Session' }).click();
  await s.getByRole('button', { name: 'End session' }).click();
  const review = carol.getByRole('dialog', { name: 'Review your notes' });
  await review.waitFor();
  await review.getByLabel('Notes to keep').fill('Printer driver reinstalled');
  await audit(carol, 'end-review-csr');
  await review.getByRole('button', { name: 'End session now' }).click();
  await s.locator('.report').getByText('Printer driver reinstalled').waitFor();
  await dave.getByText('The support session has ended').waitFor();
  await audit(carol, 'ended-csr');
  await audit(dave, 'ended-customer');

  // The dashboards of an agent (sessions waiting in a queue) and an admin (accounts).
  for (const [who, user, name, ready] of [
    ['agent', agentUser, 'Bob', '#offers li'],
    ['admin', adminUser, 'Root', '#account-list li'],
  ]) {
    const p = await newPage(who, 1280, 720);
    await p.goto(`${base}/`);
    await p.getByLabel('Username').fill(user);
    await p.getByLabel('Password', { exact: true }).fill(password);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByText(`Signed in as ${name}`, { exact: true }).waitFor();
    await p.locator(ready).first().waitFor();
    await p.locator('#script-table').waitFor();
    await audit(p, `dashboard-${who}`);
  }
});
