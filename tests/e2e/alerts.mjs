// Issue 18, item 3: what happens in a session the CSR is not looking at is counted on its tab
// and in the page's title, and cleared when they look; with the page in the background and
// notifications allowed, it also makes a desktop notification.
// Carol starts two sessions (the second's tab is shown); Dave joins the first and writes
// twice: the first tab says 3 unread (his joining and two lines), the title "(3) ...". Carol
// opens it: cleared. With the page hidden and notifications on, Dave's next line is a
// notification with his words. A recording of the first session that becomes ready is
// counted on the Dashboard's tab, its list changed by itself.
// Usage: node alerts.mjs BASE_URL CSR PASSWORD   (run by tests/browser_consoles.rs)

import { scenario, signInAndStart, joinByLink } from './harness.mjs';

const [base, csrUser, password] = process.argv.slice(2);

await scenario('alerts', [], async ({ browser, check, results, shot }) => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 720 }, permissions: ['notifications'] });
  const carol = await ctx.newPage();
  const dave = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
  for (const [who, p] of [['carol', carol], ['dave', dave]]) {
    p.on('console', (m) => { if (m.type() === 'error') console.error(`[${who}]`, m.text()); });
  }
  // Notifications as the page makes them (Chromium headless shows none of its own).
  await carol.addInitScript(() => {
    window.notified = [];
    window.Notification = class {
      static permission = 'granted';
      static requestPermission() { return Promise.resolve('granted'); }
      constructor(title, opts) { window.notified.push({ title, body: opts?.body }); }
      close() {}
    };
  });
  const { link } = await signInAndStart(carol, base, csrUser, password, 'First');
  await carol.getByRole('tab', { name: 'Dashboard' }).click();
  await carol.getByLabel('Topic').fill('Second');
  await carol.getByRole('button', { name: 'Start session' }).click();
  await carol.getByRole('tabpanel', { name: /Second/ }).waitFor();

  await joinByLink(dave, base, link, 'Dave');
  const chat = dave.locator('#chat-section').getByLabel('Message', { exact: true });
  for (const line of ['hello?', 'anyone there?']) {
    await chat.fill(line);
    await chat.press('Enter');
    await dave.locator('.chat-log').getByText(line).waitFor();
  }
  const first = carol.getByRole('tab', { name: /First/ });
  await first.getByText('3', { exact: true }).waitFor();
  check((await first.getAttribute('aria-selected')) === 'false', 'the first session is not the one shown');
  results.tab_name = await first.innerText();
  await carol.waitForFunction(() => document.title.startsWith('(3) '));
  results.title = await carol.title();
  await shot(carol, 'alerts-unread');
  // Looking at it clears it.
  await first.click();
  await carol.waitForFunction(() => !document.title.startsWith('('));
  check(await first.locator('.badge').isHidden(), 'the count is gone once Carol looks');

  // In the background, with notifications allowed: a notification with Dave's words.
  await carol.getByLabel('Desktop notifications').check();
  await carol.evaluate(() => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await chat.fill('are you there now?');
  await chat.press('Enter');
  await carol.waitForFunction(() => window.notified.length > 0);
  const notified = await carol.evaluate(() => window.notified);
  results.notified = notified;
  check(notified[0].body === 'Dave: are you there now?', `the notification says who and what: ${JSON.stringify(notified)}`);
  check(notified[0].title.includes('First'), 'the notification names the session');
  await carol.waitForFunction(() => document.title.startsWith('(1) '));
  // Back in the foreground on that session: cleared.
  await carol.evaluate(() => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => false });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await carol.waitForFunction(() => !document.title.startsWith('('));

  // The dashboard's lists are live (its feed, no Refresh button): a recording made in the
  // first session becomes ready while Carol looks at that session, and the Dashboard tab
  // counts it.
  const s1 = carol.getByRole('tabpanel', { name: /First/ });
  await s1.getByRole('tab', { name: 'Session' }).click();
  await s1.getByRole('button', { name: 'Record session' }).click();
  const dialog = dave.getByRole('dialog', { name: 'Permission requested' });
  await dialog.getByRole('button', { name: 'Allow' }).click();
  await s1.getByText('Recording: the session is being recorded.').waitFor();
  await s1.getByRole('button', { name: 'Stop recording' }).click();
  await s1.getByText('Not recording.').waitFor();
  const home = carol.getByRole('tab', { name: 'Dashboard' });
  await home.getByText('1', { exact: true }).waitFor({ timeout: 60000 });
  results.dashboard_tab = await home.innerText();
  await carol.waitForFunction(() => document.title.startsWith('(1) '));
  await home.click();
  const entry = carol.locator('#recording-list li').filter({ hasText: /First · session \d{9}/ });
  await entry.waitFor();
  results.recording = await entry.innerText();
  await carol.waitForFunction(() => !document.title.startsWith('('));
});
