// Several customers, an application share and a transfer, on the consoles (issue 4; SPEC S1,
// S4, S6, S8, S9, D6, D13):
// - Carol starts a session; Erin and Frank join by its number on the join page (keyboard only).
//   Both customers are told of each other.
// - Carol picks Frank and asks to view an application; Frank allows all actions; his window
//   shows on Carol's page and on Erin's (everyone sees what is shared). Control is offered
//   through Tandem Helper instead of started (issue 16).
// - Carol transfers the session to the queue "Tier 2" with a message; she leaves it and the
//   customers are told. Bob, an agent of that queue, sees it waiting, takes it, and is in
//   charge, with the message shown, the chat said before and the notes; the message never
//   reaches a customer's page, on screen or in its WebSocket frames (issue 18).
// Usage: node transfer.mjs BASE_URL CSR AGENT PASSWORD   (run by tests/browser_consoles.rs)

import { scenario, until, videoFrames as frames } from './harness.mjs';

const [base, csrUser, agentUser, password] = process.argv.slice(2);
async function signIn(browser, user) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.error(`[${user}]`, m.text()); });
  await page.goto(`${base}/`);
  await page.getByLabel('Username').fill(user);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText(/^Signed in as/).first().waitFor();
  return page;
}

// Every WebSocket frame each customer's page received, by name (issue 18: what a page is sent,
// not only what it shows).
const received = {};

async function joinByNumber(browser, number, name) {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const page = await ctx.newPage();
  received[name] = [];
  page.on('websocket', (ws) => ws.on('framereceived', (f) => received[name].push(String(f.payload))));
  page.on('console', (m) => { if (m.type() === 'error') console.error(`[${name}]`, m.text()); });
  await page.goto(`${base}/join`);
  await page.getByLabel('Session number').focus();
  // As people read it out: with spaces.
  await page.keyboard.type(`${number.slice(0, 3)} ${number.slice(3, 6)} ${number.slice(6)}`);
  await page.keyboard.press('Tab');
  await page.keyboard.type(name);
  await page.keyboard.press('Enter');
  await page.getByText('You are in the session.').waitFor();
  return page;
}

await scenario('transfer', ['--auto-select-desktop-capture-source=Entire screen'], async ({ browser, check, results, shot, shots }) => {
  const carol = await signIn(browser, csrUser);
  await carol.getByLabel('Topic').fill('Payroll app crashes');
  await carol.getByRole('button', { name: 'Start session' }).click();
  const s = carol.getByRole('tabpanel', { name: /Payroll app crashes/ });
  const number = (await s.locator('.number').textContent()).replace(/\s/g, '');

  // A wrong number is refused with its reason, and nothing is joined.
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const stranger = await ctx.newPage();
  await stranger.goto(`${base}/join`);
  await stranger.getByLabel('Session number').fill('987 654 321');
  await stranger.getByLabel('Your name').fill('Mallory');
  await stranger.getByRole('button', { name: 'Join session' }).click();
  // Issue 18 item 9: a sentence that says what to do, never the server's code.
  await stranger.getByText('There is no session with that number. Check the nine digits with your support representative.').waitFor();
  results.wrong_number = await stranger.locator('#status').textContent();
  check(!/_|\b[45]\d\d\b/.test(results.wrong_number), `no code in what the stranger reads: ${results.wrong_number}`);
  // A short link that is wrong or expired lands on the join page, which says so and asks for
  // the number.
  await stranger.goto(`${base}/j/0000000000`);
  await stranger.getByText('This invitation link has expired or is not right. Enter the session number your support representative gives you.').waitFor();
  check(await stranger.getByLabel('Session number').isVisible(), 'the number can be entered instead');
  // A damaged invitation link says so, and what to do.
  await stranger.goto(`${base}/join?invite=not-an-invitation`);
  await stranger.getByLabel('Your name').fill('Mallory');
  await stranger.getByRole('button', { name: 'Join session' }).click();
  await stranger.getByText('This invitation link is damaged or has expired. Ask your support representative for a new one.').waitFor();
  await ctx.close();

  const erin = await joinByNumber(browser, number, 'Erin');
  const frank = await joinByNumber(browser, number, 'Frank');
  await erin.getByText('Frank joined').waitFor();
  await s.getByText('Frank joined').waitFor();

  // S6: Carol helps Frank; D6: she views one of his applications; he allows everything.
  await s.getByLabel('Customer to help').selectOption({ label: 'Frank' });
  await s.getByRole('button', { name: 'Help this customer' }).click();
  await s.locator('.people li', { hasText: 'Frank' }).getByText('being helped').waitFor();
  await s.getByRole('tab', { name: 'Application' }).click();
  await s.getByRole('button', { name: "View customer's application" }).click();
  const dialog = frank.getByRole('dialog', { name: 'Permission requested' });
  await dialog.waitFor();
  check((await dialog.textContent()).includes('see an application you choose'), 'Frank is told an application is asked for');
  check(await erin.getByRole('dialog', { name: 'Permission requested' }).count() === 0 || !(await erin.getByRole('dialog').isVisible()),
    'Erin is not asked about Frank\'s computer');
  await dialog.getByLabel('Allow all actions during this session').check();
  await dialog.getByRole('button', { name: 'Allow' }).click();
  await frank.locator('#share-state').getByText('Carol sees what you share.').waitFor();
  results.carol_frames = await until(async () => ((await frames(carol, "Frank's shared screen")) > 5) && frames(carol, "Frank's shared screen"), "Frank's window on Carol's page");
  results.erin_frames = await until(async () => ((await frames(erin, "Frank's shared screen")) > 5) && frames(erin, "Frank's shared screen"), "Frank's window on Erin's page (D13)");
  // Allowed everything, but control needs Tandem Helper (issue 16): Frank's page offers it and
  // asks nothing, and his share goes on as it was.
  await s.getByRole('button', { name: "Control customer's application" }).click();
  await frank.getByText('To let Carol use your mouse and keyboard, run Tandem Helper.').waitFor();
  check(!(await dialog.isVisible()), 'no question on the page for control');
  check(await frank.locator('#share-state').getByText('Carol sees what you share.').isVisible(), 'the share goes on');
  await shot(carol, 'csr-console-application');

  // What the next agent should find: a line of chat and the notes.
  await s.getByRole('tab', { name: 'Tools' }).click();
  const erinsChat = erin.locator('#chat-section').getByLabel('Message', { exact: true });
  await erinsChat.fill('Erin here: it crashes for me too');
  await erinsChat.press('Enter');
  await s.locator('.chat-log').getByText('Erin here: it crashes for me too').waitFor();
  await s.getByLabel('Session notes').fill('Crash on export; logs from Frank');
  await s.getByRole('button', { name: 'Save notes' }).click();
  await carol.getByText('Notes saved.').waitFor();

  // Bob, an agent of the queue, is on his dashboard: nothing waits yet.
  const bob = await signIn(browser, agentUser);
  await bob.getByRole('heading', { name: 'Sessions waiting for an agent' }).waitFor();
  await bob.locator('#offers').getByText('No session is waiting.').waitFor();

  // S8: transfer to the queue with a message.
  await s.getByRole('tab', { name: 'Session' }).click();
  await s.getByLabel('Queue').selectOption({ label: 'Tier 2' });
  // The forms take the server's limits from its welcome (S8's 345 characters, the chat's and the
  // notes'); the page states none of its own.
  check(await s.getByLabel('Message for the next agent').evaluate((e) => e.maxLength) === 345,
    'the transfer message takes at most 345 characters, as the server says');
  check(await s.getByLabel('Message', { exact: true }).evaluate((e) => e.maxLength) === 2000,
    'a chat message takes at most 2,000 characters, as the server says');
  check(await s.locator('[data-id="notes"]').evaluate((e) => e.maxLength) === 20000,
    'notes take at most 20,000 characters, as the server says');
  await s.getByLabel('Message for the next agent').fill('Payroll crashes on export; Frank has the logs');
  await s.getByRole('button', { name: 'Transfer session' }).click();
  await carol.getByText('The session was transferred. You have left it.').waitFor();
  await frank.getByText('You are being transferred to another support person. Please wait.').waitFor();
  // The message is for the agents: not on a customer's page, nor in what it was sent.
  for (const [name, page] of [['Erin', erin], ['Frank', frank]]) {
    check(!(await page.getByText(/Payroll crashes on export/).count()), `${name}'s page does not show the message for the next agent`);
    check(!received[name].some((f) => f.includes('Payroll crashes on export')), `${name}'s page was not sent the message for the next agent`);
    check(received[name].some((f) => f.includes('session_transferred')), `${name}'s page was told of the transfer`);
  }
  // S8: the activities stopped with the transfer, and his page stopped sharing.
  await until(async () => !(await frank.getByRole('button', { name: 'Stop sharing' }).isVisible()), 'Frank\'s share ends with the transfer');

  // Issue 18: the waiting session appears on Bob's dashboard by itself (its live feed).
  await bob.getByText(/Tier 2 · waiting since .* · Payroll crashes on export/).waitFor();
  await bob.getByRole('button', { name: 'Take this session' }).click();
  await bob.getByText('You took over the session. Message: Payroll crashes on export; Frank has the logs').waitFor();
  const b = bob.getByRole('tabpanel', { name: /Payroll app crashes/ });
  await b.getByText('you are in charge').waitFor();
  // The chat before the transfer, and the notes.
  await b.getByRole('tab', { name: 'Tools' }).click();
  await b.locator('.chat-log').getByText('Erin here: it crashes for me too').waitFor();
  await until(async () => (await b.getByLabel('Session notes').inputValue()) === 'Crash on export; logs from Frank', 'Bob has the notes');
  await b.locator('.people li', { hasText: 'Erin' }).waitFor();
  await frank.getByText(/took over the session/).waitFor();
  await shot(bob, 'agent-console-transfer');
  await shot(frank, 'customer-transferred');
});
