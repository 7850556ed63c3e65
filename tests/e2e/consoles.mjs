// The consoles as people use them (issue 4; SPEC S1, S3-S5, S7, S9-S13, V1-V4, VI1, VI2, D1,
// D10, D12, D13), clicked through in Debian's headless Chromium with fake camera, microphone
// and screen:
// - Carol (CSR, 1280x720) signs in and starts a session with the keyboard only, copies the
//   invite link; Dave opens it on a phone-sized page (390x844) and joins; they chat both ways.
// - Carol asks to view Dave's desktop; Dave declines, then allows (keyboard); his screen appears
//   on Carol's page. Carol starts the voice call; Dave is invited at once, joins, listens and
//   asks to speak; Carol lets him speak with one click, sets his level, and sees him speak; each
//   mutes and unmutes. Ann, an assistant, joins by session number and sees the share. Carol
//   draws on the share: Ann and Dave see the strokes. Carol's camera, then Dave's.
// - Dave is offered nothing he may not do; the one thing he tries too early (his camera before
//   Carol's) is refused with its reason, and so is Ann's attempt to end the session.
// - A second session in a second tab; control handed to Ann there, who ends it.
// - Carol ends the first session, reviews her notes, and sees the report.
// Controls are found by role and accessible name. Screenshots go to tests/e2e/artifacts/.
// Usage: node consoles.mjs BASE_URL CSR ASSISTANT PASSWORD   (run by tests/browser_consoles.rs)

import fs from 'node:fs';
import path from 'node:path';
import { scenario, sleep, until, videoFrames as frames } from './harness.mjs';

const [base, csrUser, assistantUser, password] = process.argv.slice(2);
// Drawn (non-transparent) pixels on the annotation layer of the visible viewers.
const inked = (page) => page.evaluate(() => {
  let n = 0;
  for (const c of document.querySelectorAll('.stage canvas')) {
    if (!c.offsetParent || !c.width) continue;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < d.length; i += 4) if (d[i]) n += 1;
  }
  return n;
});

async function signIn(page, user) {
  await page.goto(`${base}/`);
  await page.getByLabel('Username').fill(user);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText(/^Signed in as/).first().waitFor();
}

await scenario('consoles', ['--auto-select-desktop-capture-source=Entire screen'], async ({ browser, check, results, shot, shots }) => {
  const csrCtx = await browser.newContext({ viewport: { width: 1280, height: 720 }, acceptDownloads: true });
  await csrCtx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const carol = await csrCtx.newPage();
  carol.on('console', (m) => { if (m.type() === 'error') console.error('[carol]', m.text()); });

  // Keyboard only: sign in and start a session.
  await carol.goto(`${base}/`);
  await carol.getByLabel('Username').focus();
  await carol.keyboard.type(csrUser);
  await carol.keyboard.press('Tab');
  await carol.keyboard.type(password);
  await carol.keyboard.press('Enter');
  await carol.getByLabel('Topic').waitFor();
  check(await carol.getByLabel('Topic').evaluate((el) => el === document.activeElement), 'after sign-in the topic field has the focus');
  await carol.keyboard.type('Printer offline');
  await carol.keyboard.press('Enter');
  await carol.getByText(/Session \d{9} started/).waitFor();
  const s1 = carol.getByRole('tabpanel', { name: /Printer offline/ });
  const number = (await s1.locator('.number').textContent()).replace(/\s/g, '');
  await s1.getByRole('button', { name: 'Copy invite link' }).click();
  await carol.getByText('Invite link copied.').waitFor();
  const link = await carol.evaluate(() => navigator.clipboard.readText());
  // Issue 18 item 9: a short link, to read out or type.
  check(/\/j\/[0-9a-z]{10}$/.test(link) && link.length < 60, `the copied invite link is short: ${link}`);
  check(link === await s1.getByLabel('Invite link').inputValue(), 'the clipboard holds the link shown');
  await shot(carol, 'csr-console-started');

  // Dave joins by the link (keyboard only) on a phone-sized page.
  const invite = new URL(link);
  const custCtx = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const dave = await custCtx.newPage();
  dave.on('console', (m) => { if (m.type() === 'error') console.error('[dave]', m.text()); });
  await dave.goto(`${base}${invite.pathname}${invite.search}`);
  check(!(await dave.getByLabel('Session number').isVisible()), 'the invite link needs no session number');
  await dave.getByLabel('Your name').focus();
  await dave.keyboard.type('Dave');
  await dave.keyboard.press('Enter');
  await carol.getByText('Dave joined').waitFor();
  await dave.getByText('You are in the session.').waitFor();

  // Chat both ways; the message field has the focus after joining.
  await dave.keyboard.type('My printer says offline');
  await dave.keyboard.press('Enter');
  await s1.getByText('My printer says offline').waitFor();
  await s1.getByLabel('Message', { exact: true }).fill('Let me have a look');
  await s1.getByLabel('Message', { exact: true }).press('Enter');
  await dave.getByText('Let me have a look').waitFor();
  // S10, issue 18: the admin's quick phrases are in the chat box, sent with one choice.
  await s1.getByLabel('Quick phrase').selectOption({ label: 'Thank you for waiting.' });
  await dave.locator('.chat-log').getByText('Thank you for waiting.').waitFor();
  // The box is reset once the server has taken the line, which may come after Dave sees it.
  await until(async () => (await s1.getByLabel('Quick phrase').inputValue()) === '', 'the phrase box is ready for the next one');
  // The number as it is read out, with what to tell a customer on the phone.
  check(/^\d{3} \d{3} \d{3}$/.test(await s1.locator('.number').textContent()), 'the session number is grouped in threes');
  await s1.getByText(/Or tell the customer: go to .+\/join and enter \d{3} \d{3} \d{3}\./).waitFor();

  // Dave may do only what a customer may: nothing of the CSR's is offered to him.
  for (const name of ['End session', "View customer's desktop", 'Start voice call', 'Hand control']) {
    check(await dave.getByRole('button', { name }).count() === 0, `the customer is not offered "${name}"`);
  }
  // The one thing he may try too early is refused with the reason (VI1).
  await dave.getByRole('button', { name: 'Start my camera' }).click();
  // Issue 18 item 9: in plain words, not the server's terms or codes.
  await dave.getByText('You can start your camera once your support representative has started theirs.').waitFor();

  // Consent: declined, then allowed with the keyboard (S9); the screen appears (D1).
  await s1.getByRole('tab', { name: 'Tools' }).focus();
  await carol.keyboard.press('ArrowRight');
  check(await s1.getByRole('tab', { name: 'Desktop' }).evaluate((el) => el === document.activeElement && el.getAttribute('aria-selected') === 'true'),
    'the arrow key moves to the Desktop tab');
  await s1.getByRole('button', { name: "View customer's desktop" }).click();
  const dialog = dave.getByRole('dialog', { name: 'Permission requested' });
  await dialog.waitFor();
  check((await dialog.textContent()).includes('see your screen'), 'the customer is told what is asked');
  await shot(dave, 'customer-consent');
  await dialog.getByRole('button', { name: 'Deny' }).click();
  await carol.getByText('Dave declined.').waitFor();
  await s1.getByRole('button', { name: "View customer's desktop" }).click();
  await dialog.waitFor();
  await dave.keyboard.press('Enter'); // Allow has the focus
  await s1.getByText("Viewing the desktop of Dave.").waitFor();
  await dave.locator('#share-state').getByText('Carol sees what you share.').waitFor();
  // Issue 18 item 8: at the top of Dave's page, whoever helps and what they do now.
  const now = dave.getByRole('list', { name: 'What is happening now' });
  await now.getByText('Screen seen by Carol').waitFor();
  check(await dave.locator('#helping').textContent() === 'Carol is helping you.', 'Dave\'s page says who is helping him');
  results.carol_share_frames = await until(async () => ((await frames(carol, "Dave's shared screen")) > 5 ? frames(carol, "Dave's shared screen") : 0),
    "Dave's screen shows on Carol's page");
  await shot(carol, 'csr-console-viewing');

  // Voice (V1-V4, issue 18 item 5): Carol starts the call; Dave is asked to join at once; he
  // listens and asks to speak; Carol sees the ask and lets him speak with one click.
  await s1.getByRole('tab', { name: 'Tools' }).click();
  await s1.getByRole('button', { name: 'Start voice call' }).click();
  await s1.getByText('You are in the call and can speak: the others hear you.').waitFor();
  const invitation = dave.getByRole('group', { name: 'Carol started a voice call.' });
  await invitation.waitFor();
  await shot(dave, 'customer-voice-invitation');
  await invitation.getByRole('button', { name: 'Join voice call' }).click();
  await dave.getByText('You are in the call and listening: nobody hears you. Carol decides who speaks; ask if you want to.').waitFor();
  check(await dave.getByRole('button', { name: /Let .*speak/ }).count() === 0, 'the customer is not offered to let anyone speak');
  check(await dave.getByRole('slider', { name: /level in the call/ }).count() === 0, 'nor anyone\'s level but his own');
  const members = s1.getByRole('list', { name: 'In the call' });
  await members.getByText('Dave').waitFor();
  check((await members.locator('li', { hasText: 'Dave' }).textContent()).includes('listening'), 'Carol sees Dave in the call, listening');
  await dave.getByRole('button', { name: 'Ask to speak' }).click();
  await members.locator('li', { hasText: 'Dave' }).getByText('asks to speak').waitFor();
  await members.getByRole('button', { name: 'Let speak: Dave' }).click();
  await dave.getByText('You are in the call and can speak: the others hear you.').waitFor();
  await dave.getByText('Carol let you speak: the others hear you now.').waitFor();
  await members.locator('li', { hasText: 'Dave' }).getByText('can speak').waitFor();
  await shot(carol, 'csr-console-call-members');
  // The speaking indicator: Carol's page marks Dave while his (fake, beeping) microphone is heard.
  await until(() => s1.locator('.people li', { hasText: 'Dave' }).locator('.mic.speaking').count(), 'Dave is shown speaking on Carol\'s page', 30000);
  // V4: Carol sets Dave's level in the call; the server keeps it (a reload of the view shows it).
  await members.getByRole('slider', { name: "Dave's level in the call (%)" }).fill('50');
  await carol.getByText("Dave's level in the call set to 50 %.").waitFor();
  // Dave mutes himself: he keeps the microphone, and his page says he is muted.
  await dave.getByRole('button', { name: 'Mute my microphone' }).click();
  await dave.getByText('You are in the call and can speak, but your microphone is muted.').waitFor();
  check(await dave.getByRole('button', { name: 'Unmute my microphone' }).getAttribute('aria-pressed') === 'true', 'Dave\'s mute button shows it is pressed');
  await dave.getByRole('button', { name: 'Unmute my microphone' }).click();
  await dave.getByText('You are in the call and can speak: the others hear you.').waitFor();

  // The icon bar mutes Carol's microphone (she keeps it) and unmutes it.
  await s1.getByRole('button', { name: 'Mute microphone' }).click();
  await s1.getByText('You are in the call and can speak, but your microphone is muted.').waitFor();
  check(await s1.getByRole('button', { name: 'Mute microphone' }).getAttribute('aria-pressed') === 'true', 'the mute button shows it is pressed');
  await s1.getByRole('button', { name: 'Mute microphone' }).click();
  await carol.getByText('Your microphone is on.').waitFor();
  // Muted from the voice panel instead, the icon bar shows it too.
  await s1.getByRole('button', { name: 'Mute my microphone' }).click();
  await until(async () => (await s1.getByRole('button', { name: 'Mute microphone' }).getAttribute('aria-pressed')) === 'true', 'the icon bar shows a mute made in the voice panel');
  await s1.getByRole('button', { name: 'Unmute my microphone' }).click();
  await until(async () => (await s1.getByRole('button', { name: 'Mute microphone' }).getAttribute('aria-pressed')) === 'false', 'and the unmute');

  // Ann, an assistant, joins by the session number and sees the share (S5, D13).
  const annCtx = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const ann = await annCtx.newPage();
  ann.on('console', (m) => { if (m.type() === 'error') console.error('[ann]', m.text()); });
  await signIn(ann, assistantUser);
  await ann.getByLabel('Session number').fill(number);
  await ann.getByRole('button', { name: 'Join as assistant' }).click();
  await ann.getByText(/You are assisting in session/).waitFor();
  const a1 = ann.getByRole('tabpanel', { name: /Printer offline/ });
  await a1.getByText(/you are assisting; Carol is in charge/).waitFor();
  await s1.getByText('Ann joined').waitFor();
  results.ann_share_frames = await until(async () => ((await frames(ann, "Dave's shared screen")) > 5 ? frames(ann, "Dave's shared screen") : 0),
    'Ann sees Dave\'s screen');
  // What the server refuses an assistant is shown with its reason (S12).
  await a1.getByRole('tab', { name: 'Session' }).click();
  await a1.getByRole('button', { name: 'End session' }).click();
  await ann.getByRole('button', { name: 'End session now' }).click();
  await ann.getByText('only the primary CSR can do this').waitFor();
  await shot(ann, 'assistant-console');

  // Annotations (D12): Carol draws with the pen; Ann and Dave see the stroke live.
  await s1.getByRole('button', { name: 'Pen' }).click();
  const stage = await s1.locator('.stage').boundingBox();
  await carol.mouse.move(stage.x + stage.width * 0.3, stage.y + stage.height * 0.3);
  await carol.mouse.down();
  for (let i = 1; i <= 10; i += 1) await carol.mouse.move(stage.x + stage.width * (0.3 + i * 0.03), stage.y + stage.height * 0.4, { steps: 2 });
  await carol.mouse.up();
  results.ink = {
    carol: await inked(carol),
    ann: await until(() => inked(ann), 'Ann sees Carol\'s annotation'),
    dave: await until(() => inked(dave), 'Dave sees Carol\'s annotation on his preview'),
  };
  // Screenshot of the share with the annotation, saved as a file.
  const [download] = await Promise.all([carol.waitForEvent('download'), s1.getByRole('button', { name: 'Screenshot' }).click()]);
  const saved = path.join(shots, 'annotated-screenshot.png');
  await download.saveAs(saved);
  check(fs.statSync(saved).size > 1000, 'the screenshot is a real picture');
  // Clear all clears it for everyone.
  await s1.getByRole('button', { name: 'Clear all' }).click();
  await until(async () => (await inked(ann)) === 0, 'Clear all clears Ann\'s view');
  // View options (D10): actual size, and back to scale to fit.
  await s1.getByLabel('View', { exact: true }).selectOption('Actual size');
  check(!(await s1.locator('.stage').evaluate((el) => el.classList.contains('fit'))), 'actual size is shown unscaled');
  await s1.getByLabel('View', { exact: true }).selectOption('Scale to fit');
  await s1.getByRole('button', { name: 'Full screen' }).click();
  await until(() => carol.evaluate(() => document.fullscreenElement?.classList.contains('viewer')), 'the shared screen fills the screen');
  await s1.getByRole('button', { name: 'Exit full screen' }).click();
  await until(() => carol.evaluate(() => !document.fullscreenElement), 'back to the window');
  await s1.getByRole('button', { name: 'Pen' }).click(); // put the pen down

  // Display mode (D11): screen sampling halves the picture Dave sends, for speed; every CSR's
  // console shows the mode in force.
  const width = () => s1.locator('.screen video').evaluate((v) => v.videoWidth);
  const sharp = await width();
  await s1.getByRole('tab', { name: 'Session' }).click();
  await s1.getByLabel('Display mode').selectOption({ label: 'Screen sampling (faster)' });
  await a1.getByRole('tab', { name: 'Session' }).click();
  await until(async () => (await a1.getByLabel('Display mode').inputValue()) === 'sampling', 'Ann\'s console shows the display mode');
  results.display_width = { standard: sharp, sampling: await until(async () => { const w = await width(); return w && w <= sharp / 2 + 1 && w; }, 'the shared screen arrives at half size') };
  await s1.getByLabel('Display mode').selectOption({ label: 'Standard quality' });
  await until(async () => (await width()) === sharp, 'standard quality restores the full size');
  await s1.getByRole('tab', { name: 'Tools' }).click();

  // Cameras (VI1, VI2): Carol's first, then Dave's; each sees the other's large.
  await s1.getByRole('button', { name: 'Start my camera' }).click();
  await dave.getByText("Carol's camera is on. You may start yours.").waitFor();
  await until(async () => (await frames(dave, "Carol's camera")) > 5, "Dave sees Carol's camera");
  await dave.getByRole('button', { name: 'Start my camera' }).click();
  await until(async () => (await frames(carol, "Dave's camera")) > 5, "Carol sees Dave's camera");
  await shot(dave, 'customer-session');
  await shot(carol, 'csr-console-call');

  // Recording (S9, R1): asked of Dave, allowed, running, stopped; then listed on the dashboard.
  await s1.getByRole('tab', { name: 'Session' }).click();
  await s1.getByRole('button', { name: 'Record session' }).click();
  await dialog.waitFor();
  check((await dialog.textContent()).includes('record this session'), 'the customer is asked about recording');
  await dialog.getByRole('button', { name: 'Allow' }).click();
  await s1.getByText('Recording: the session is being recorded.').waitFor();
  await now.getByText('Recorded').waitFor();
  await dave.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
  check(await now.getByText('Recorded').evaluate((el) => { const r = el.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }),
    'the recording badge stays in view at the top of Dave\'s page, scrolled to its end');
  await sleep(2000);
  await s1.getByRole('button', { name: 'Stop recording' }).click();
  await s1.getByText('Not recording.').waitFor();
  await carol.getByRole('tab', { name: 'Dashboard' }).click();
  // One entry (with Play and E-mail buttons once its MP4 is ready, which may be at once).
  await carol.locator('#recording-list li').filter({ hasText: /Printer offline · session \d{9}/ }).first().waitFor();
  // Issue 18: the list says when, and with whom; it came without a Refresh button (the
  // dashboard's feed), and it was not there when the dashboard was first shown.
  const entry = await carol.locator('#recording-list li').first().innerText();
  check(/ · \w{3} \d{1,2}, \d{4}, .* · with Carol for Dave · /.test(entry), `the recording's date, CSR and customer are listed: ${entry}`);
  check(await carol.getByRole('button', { name: /^Refresh( recordings)?$/ }).count() === 0, 'the dashboard has no Refresh buttons for its lists');
  await carol.getByRole('tab', { name: /Printer offline/ }).click();

  // S3: a second session in a tab of its own; control handed to Ann there (S7).
  await carol.getByRole('tab', { name: 'Dashboard' }).click();
  await carol.getByLabel('Topic').fill('VPN setup');
  await carol.getByRole('button', { name: 'Start session' }).click();
  const s2 = carol.getByRole('tabpanel', { name: /VPN setup/ });
  await s2.getByText('you are in charge').waitFor();
  check(await carol.getByRole('tab', { name: /Printer offline|VPN setup/ }).count() === 2, 'one tab per session');
  const number2 = (await s2.locator('.number').textContent()).replace(/\s/g, '');
  await ann.getByRole('tab', { name: 'Dashboard' }).click();
  await ann.getByLabel('Session number').fill(number2);
  await ann.getByRole('button', { name: 'Join as assistant' }).click();
  await s2.getByText('Ann joined').waitFor();
  await s2.getByRole('tab', { name: 'Session' }).click();
  await s2.getByLabel('Assistant to take over').selectOption({ label: 'Ann' });
  await s2.getByRole('button', { name: 'Hand control' }).click();
  await s2.getByText(/you are assisting; Ann is in charge/).waitFor();
  const a2 = ann.getByRole('tabpanel', { name: /VPN setup/ });
  await a2.getByText('you are in charge').waitFor();
  await s2.getByRole('button', { name: 'End session' }).click();
  await carol.getByRole('button', { name: 'End session now' }).click();
  await carol.getByText('only the primary CSR can do this').waitFor();
  await a2.getByRole('tab', { name: 'Session' }).click();
  await a2.getByRole('button', { name: 'End session' }).click();
  await ann.getByRole('button', { name: 'End session now' }).click();
  await s2.getByRole('heading', { name: 'Session report' }).waitFor();
  await s2.getByRole('button', { name: 'Close this tab' }).click();
  check(await carol.getByRole('tab', { name: /VPN setup/ }).count() === 0, 'the ended session\'s tab closes');

  // The first session is still live in its tab; Carol writes notes, ends it and reviews them.
  await carol.getByRole('tab', { name: /Printer offline/ }).click();
  await s1.getByRole('tab', { name: 'Tools' }).click();
  await s1.getByLabel('Session notes').fill('Printer driver reinstalled');
  await s1.getByRole('button', { name: 'Save notes' }).click();
  await carol.getByText('Notes saved.').waitFor();
  await ann.getByRole('tab', { name: /Printer offline/ }).click();
  await a1.getByRole('tab', { name: 'Tools' }).click();
  await until(async () => (await a1.getByLabel('Session notes').inputValue()) === 'Printer driver reinstalled', 'Ann sees the notes');
  await s1.getByRole('tab', { name: 'Session' }).click();
  await s1.getByRole('button', { name: 'End session' }).click();
  const review = carol.getByRole('dialog', { name: 'Review your notes' });
  check(await review.getByLabel('Notes to keep').inputValue() === 'Printer driver reinstalled', 'the notes are shown for review at the end (S11)');
  await review.getByLabel('Notes to keep').fill('Printer driver reinstalled; test page printed');
  await review.getByRole('button', { name: 'End session now' }).click();
  await carol.getByText('The session has ended').waitFor();
  await dave.getByText('The support session has ended').waitFor();
  await s1.locator('.report').getByText('Printer driver reinstalled; test page printed').waitFor();
  // Issue 18, item 7: the report is in view, with the chat as it was said, the consents and
  // the activities, and prints alone.
  const report = s1.locator('.report');
  const where = await report.evaluate((el) => ({ top: el.getBoundingClientRect().top, height: window.innerHeight, scrollY: window.scrollY, focused: document.activeElement === el }));
  results.report_at = where;
  const inView = where.top > -2 && where.top < where.height && where.focused;
  check(inView, 'the report is in view when the session ends');
  await report.getByRole('table', { name: 'Chat' }).getByText('Let me have a look').waitFor();
  await report.getByRole('table', { name: 'Consents' }).waitFor();
  await report.getByRole('table', { name: 'Participants' }).getByText('Dave').waitFor();
  results.report = await report.innerText();
  await carol.evaluate(() => { window.print = () => { window.printedReport = document.body.classList.contains('print-report'); }; });
  await report.getByRole('button', { name: 'Print report' }).click();
  check(await carol.evaluate(() => window.printedReport === true), 'Print report prints the report alone');
  await shot(carol, 'csr-console-ended');
  results.link = link;
});
