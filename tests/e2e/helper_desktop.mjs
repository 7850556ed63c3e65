// Tandem Helper end to end in Chromium (issue 16, "Must show": the CI test under Xvfb). Run by
// helper/tests/join/chromium.rs, which holds the real parts this script cannot: Xvfb, the test
// window (helper/examples/test_window.rs: red, green / blue, yellow quadrants, a white marker in
// the middle, on a black screen) and the real `tandem-helper` binary. This script is Carol's
// console and Dave's page; where the helper or the test window must act or be looked at, it asks
// the test with one JSON line on stdout ({"ask": ...}) and waits for its one-line answer on stdin.
// - Carol starts a session, Dave joins; Carol asks to control Dave's desktop; Dave's page offers
//   the helper with a code, which the test reads off the page and types into the helper's window.
// - The helper asks in its window; the customer answers there (the test, over AT-SPI). Carol's
//   console shows the test window, checked by the colours of the video's pixels.
// - Carol clicks a point of the pattern and types: the test window gets the click at that point
//   (within 2 px) and the keys.
// - Stop in the helper, from Dave's page and from Carol's console: after each, Carol's browser
//   sends a click and text on the control channel anyway (bypassing the console, which would
//   not send them), control is asked for and allowed again, and the test window's next click
//   and keys are the new ones: nothing sent after the stop was injected.
// - M1: Carol reads Dave's system information from the Tools tab; Dave allows it in the helper's
//   window; Carol's console shows this machine's real hostname, OS and memory; the saved .txt
//   holds them; printing shows the information and nothing else of the console; Refresh reads
//   it again.
// - M3: Carol picks two scripts of her library, puts the second first, and runs them; Dave
//   allows them in the helper's window, which lists them in that order; both results and logs
//   show on her console, in that order, and the logs are in chat.
// - F2: Dave allows file transfer on his page; while his screen is shared, Carol copies his
//   folder Fotos into a folder of hers and sends two files into it, nothing asked, every
//   SHA-256 equal, and sends that folder of hers (as her side lists it) back into his Fotos;
//   once sharing ends, a new folder and its deletion are asked in the helper.
// - M4: Carol signs in on Dave's computer as a user the test made; Dave allows it in the
//   helper's window; a wrong password is refused on her form; the right one shows that user's
//   own screen (the test window B: magenta, cyan / orange, purple) on her console, which her
//   click reaches, while a notice covers Dave's screen and his page says so; Sign out brings
//   Dave's screen back and the notice goes.
// Usage: node helper_desktop.mjs BASE_URL CSR PASSWORD OTHER_USER OTHER_PASSWORD

import crypto from 'node:crypto';
import fs from 'node:fs';
import readline from 'node:readline';
import { scenario, until, signInAndStart, joinByLink } from './harness.mjs';

const [base, csrUser, password, otherUser, otherPassword] = process.argv.slice(2);

// One question to the test, one answer back.
const replies = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(what, args = {}) {
  console.log(JSON.stringify({ ask: what, ...args }));
  const { value, done } = await replies.next();
  if (done) throw new Error(`the test went away during ${what}`);
  const answer = JSON.parse(value);
  if (!answer.ok) throw new Error(`${what} ${JSON.stringify(args)}: ${answer.error}`);
  return answer;
}

// Xvfb's screen, and the test window on it (join.rs's test_window: 400x300 at 700,100, clear of
// the helper's windows at the top left); `w` is a point of the test window, on the screen.
const SCREEN = { w: 1280, h: 800 };
const WINDOW = { x: 700, y: 100 };
const w = (x, y) => [WINDOW.x + x, WINDOW.y + y];
// Screen points and the colour the CSR must see there: the quadrants, the marker, and the black
// screen beside and below the window.
const PATTERN = [
  [...w(100, 75), [255, 0, 0]], [...w(300, 75), [0, 255, 0]], [...w(100, 225), [0, 0, 255]], [...w(300, 225), [255, 255, 0]],
  [...w(200, 150), [255, 255, 255]], [650, 50, [0, 0, 0]], [900, 600, [0, 0, 0]],
];
const LABEL = "Dave's shared screen";

// The colours of the video's pixels at the pattern's points, as Carol's console shows them.
const seen = (page, label = LABEL, points = PATTERN) => page.evaluate(({ label, points, screen }) => {
  const v = [...document.querySelectorAll('video')].find((el) => el.getAttribute('aria-label') === label && el.offsetParent);
  if (!v || !v.videoWidth) return null;
  const c = document.createElement('canvas');
  c.width = v.videoWidth;
  c.height = v.videoHeight;
  const g = c.getContext('2d', { willReadFrequently: true });
  g.drawImage(v, 0, 0);
  const sx = v.videoWidth / screen.w;
  const sy = v.videoHeight / screen.h;
  return { size: [v.videoWidth, v.videoHeight], at: points.map(([x, y]) => [...g.getImageData(Math.floor(x * sx), Math.floor(y * sy), 1, 1).data.slice(0, 3)]) };
}, { label, points: points.map(([x, y]) => [x, y]), screen: SCREEN });

const near = (a, b) => a.every((v, i) => Math.abs(v - b[i]) < 48);
const showsPattern = async (page) => {
  const s = await seen(page);
  return s && s.size[0] === SCREEN.w && s.size[1] === SCREEN.h && PATTERN.every(([, , rgb], i) => near(s.at[i], rgb)) && s;
};

// Where screen point (x, y) is drawn in Carol's console: the video scales the picture to fit
// and letterboxes it (object-fit: contain); the middle of that screen pixel.
const drawnAt = async (page, [x, y], label = LABEL) => {
  const v = page.locator(`video[aria-label="${label}"]`).filter({ visible: true });
  await v.scrollIntoViewIfNeeded();
  const r = await v.evaluate((el) => {
    const b = el.getBoundingClientRect();
    return { left: b.left, top: b.top, width: b.width, height: b.height, vw: el.videoWidth, vh: el.videoHeight };
  });
  const s = Math.min(r.width / r.vw, r.height / r.vh);
  const left = r.left + (r.width - r.vw * s) / 2;
  const top = r.top + (r.height - r.vh * s) / 2;
  return [left + (x + 0.5) * (r.vw / SCREEN.w) * s, top + (y + 0.5) * (r.vh / SCREEN.h) * s];
};

// Carol clicks screen point `at` in her console and types `text`; the test window must get
// exactly these next.
async function clickAndType(carol, at, text) {
  const [x, y] = await drawnAt(carol, at);
  await carol.mouse.click(x, y);
  await carol.keyboard.type(text);
  const got = await ask('expect_click', { x: at[0] - WINDOW.x, y: at[1] - WINDOW.y });
  await ask('expect_text', { text });
  return got.at;
}

// What a console that went on sending after a stop would send: a click and text, straight on
// Carol's `control` data channel (captured as the page created it).
const sendAnyway = (page, [x, y]) => page.evaluate(({ at }) => {
  const ch = window.channels && window.channels.control;
  if (!ch || ch.readyState !== 'open') return false;
  for (const m of [{ t: 'move', at }, { t: 'down', at, button: 0 }, { t: 'up', at, button: 0 }, { t: 'text', text: 'x' }, { t: 'key', key: 'q', code: 'KeyQ' }]) {
    ch.send(JSON.stringify(m));
  }
  return true;
}, { at: [x / SCREEN.w, y / SCREEN.h] });

await scenario('helper-desktop', [], async ({ browser, check, results, shot }) => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await ctx.addInitScript(() => {
    const create = RTCPeerConnection.prototype.createDataChannel;
    window.channels = {};
    RTCPeerConnection.prototype.createDataChannel = function createDataChannel(label, ...rest) {
      const ch = create.call(this, label, ...rest);
      window.channels[label] = ch;
      window.pc = this;
      return ch;
    };
  });
  const carol = await ctx.newPage();
  carol.on('console', (m) => { if (m.type() === 'error') console.error('[carol]', m.text()); });
  const { panel: s, link } = await signInAndStart(carol, base, csrUser, password, 'Printer settings');

  const dave = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
  dave.on('console', (m) => { if (m.type() === 'error') console.error('[dave]', m.text()); });
  await joinByLink(dave, base, link, 'Dave');
  await s.getByText('Dave joined').waitFor();

  // Carol asks for control; Dave's page offers the helper with a code; Dave runs it.
  await s.getByRole('tab', { name: 'Desktop' }).click();
  await s.getByRole('button', { name: "Control customer's desktop" }).click();
  const offer = dave.getByRole('region', { name: 'Tandem Helper' });
  await offer.getByText('Waiting for Tandem Helper...').waitFor();
  const code = (await dave.locator('#helper-code').textContent()).trim();
  await ask('join', { code });
  await offer.getByRole('listitem').filter({ hasText: "Carol asks to use your mouse and keyboard through Tandem Helper. The question is in Tandem Helper's window." }).waitFor();
  await ask('answer', { expect: 'Carol asks to control your computer' });
  await s.getByText('Controlling the desktop of Dave.').waitFor();

  // Viewing: asked in the helper too; Carol's console shows the test window's pattern.
  const allowAgain = async (controlling) => {
    const order = controlling ? [] : [["Control customer's desktop", 'Carol asks to control your computer']];
    for (const [button, question] of [["View customer's desktop", 'Carol asks to see your screen'], ...order]) {
      await s.getByRole('button', { name: button }).click();
      await ask('answer', { expect: question });
    }
    await s.getByText('Controlling the desktop of Dave.').waitFor();
    return until(() => showsPattern(carol), "Carol's console shows the test window's pattern");
  };
  results.pattern = await allowAgain(true);
  // The helper's screen comes with playout delay 0/0, so Chromium shows each change as soon as
  // it is decoded instead of holding a lone frame for its render smoothing (issue 16's latency).
  results.screen_extensions = await carol.evaluate(() => window.pc.getReceivers()
    .filter((r) => r.track.kind === 'video' && r.track.readyState === 'live')
    .map((r) => r.getParameters().headerExtensions.map((e) => e.uri)));
  check(results.screen_extensions.length > 0 && results.screen_extensions.every((uris) => uris.includes('http://www.webrtc.org/experiments/rtp-hdrext/playout-delay')),
    `Carol's Chromium accepted playout delay on the helper's screen: ${JSON.stringify(results.screen_extensions)}`);
  await dave.getByText('Carol sees your screen and uses your mouse and keyboard through Tandem Helper.').waitFor();
  await shot(carol, 'helper-desktop-console');

  // Carol clicks the red quadrant and types.
  results.clicks = [await clickAndType(carol, w(150, 40), 'hi')];

  // Each way to stop; after it, input sent anyway reaches nothing, and control asked again works.
  const stops = [
    ['Stop in the helper', async () => { await ask('stop_in_helper'); }],
    ["Stop sharing on Dave's page", async () => {
      await dave.getByRole('button', { name: 'Stop sharing' }).click();
      await ask('stopped');
    }],
    ["End desktop sharing on Carol's console", async () => {
      await s.getByRole('button', { name: 'End desktop sharing' }).click();
      await ask('stopped');
    }],
  ];
  const fresh = [[w(240, 30), 'ok'], [w(30, 180), 'go'], [w(340, 180), 'up']];
  for (const [i, [what, stop]] of stops.entries()) {
    await stop();
    check(await sendAnyway(carol, w(350, 260)), `${what}: Carol's control channel is still open to send on`);
    await s.getByText('Dave is not sharing.').waitFor();
    await allowAgain(false);
    const [at, text] = fresh[i];
    results.clicks.push(await clickAndType(carol, at, text));
  }

  // M1: system information, asked in the helper's window, as this machine really is.
  const hostname = fs.readFileSync('/proc/sys/kernel/hostname', 'utf8').trim();
  const osName = /^NAME="?([^"\n]*)"?$/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))[1];
  const memKiB = Number(/^MemTotal:\s+(\d+) kB$/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))[1]);
  await s.getByRole('tab', { name: 'Tools' }).click();
  const info = s.getByRole('region', { name: 'System information' });
  await info.getByRole('button', { name: 'Read system information' }).click();
  await ask('answer', { expect: 'Carol asks to read information about this computer' });
  await info.getByRole('heading', { name: `Dave's computer: ${hostname}` }).waitFor();
  const text = await info.locator('.system-info-out').innerText();
  check(text.includes(osName), `the console shows the OS (${osName})`);
  check(text.includes(`(${memKiB * 1024} bytes)`), 'the console shows the memory as /proc/meminfo has it');
  await shot(carol, 'helper-desktop-system-info');
  const [download] = await Promise.all([carol.waitForEvent('download'), info.getByRole('button', { name: 'Save as .txt' }).click()]);
  const saved = fs.readFileSync(await download.path(), 'utf8');
  results.system_info_txt = { name: download.suggestedFilename(), bytes: saved.length };
  check(saved.includes(`Hostname: ${hostname}`), 'the .txt holds the hostname');
  check(saved.includes(osName), 'the .txt holds the OS');
  check(saved.includes(`Total bytes: `) && saved.includes(`(${memKiB * 1024} bytes)`), 'the .txt holds the memory');
  // Print: only the information is printed.
  await carol.evaluate(() => { window.print = () => { window.printed = true; }; });
  await info.getByRole('button', { name: 'Print' }).click();
  await carol.emulateMedia({ media: 'print' });
  check(await carol.evaluate(() => window.printed === true), 'Print prints');
  // By CSS: the region around it is hidden in print, so it has no role there.
  check(await carol.locator('.system-info-out h4', { hasText: hostname }).isVisible(), 'the printout shows the information');
  check(!(await s.getByLabel('Invite link').isVisible()), 'the printout leaves the rest of the console out');
  await carol.evaluate(() => window.dispatchEvent(new Event('afterprint')));
  await carol.emulateMedia({ media: 'screen' });
  check(await s.getByLabel('Invite link').isVisible(), 'after printing the console is as before');
  // Refresh reads it again.
  const before = await info.locator('.system-info-state').textContent();
  await info.getByRole('button', { name: 'Refresh' }).click();
  await carol.getByText('Asked Tandem Helper to read the information again.').waitFor();
  await carol.getByText("System information of Dave's computer arrived.").waitFor();
  results.system_info_state = [before, await info.locator('.system-info-state').textContent()];

  // M3: two scripts, the order changed, allowed in the helper's window.
  const runs = s.getByRole('region', { name: 'Run scripts' });
  for (const name of ['Say hello', 'Show folder']) {
    await runs.getByLabel('Script to add').selectOption({ label: `${name} (Printing)` });
    await runs.getByRole('button', { name: 'Add to the run' }).click();
  }
  await runs.getByRole('button', { name: 'Move Show folder up' }).click();
  const order = await runs.getByRole('list', { name: 'Scripts to run, in order' }).innerText();
  check(order.indexOf('Show folder') < order.indexOf('Say hello'), `the run's order is the one Carol chose: ${order}`);
  await runs.getByRole('button', { name: "Run on the customer's computer" }).click();
  const question = await ask('answer', { expect: 'asks to run these scripts' });
  results.script_question = question;
  await runs.getByText('Say hello: exit code 0').waitFor();
  const shown = await runs.getByRole('list', { name: 'Script results' }).innerText();
  check(shown.indexOf('Show folder') < shown.indexOf('Say hello'), `the results come in the chosen order: ${shown}`);
  await s.locator('.chat').getByText('hello from the script').waitFor();
  await s.getByText("The scripts are running on Dave's computer").waitFor({ state: 'detached' }).catch(() => {});
  await shot(carol, 'helper-desktop-scripts');

  // F2: Dave's files through his helper. While his screen is shared nothing more is asked.
  await s.getByRole('button', { name: 'Send files to the customer' }).click();
  const consent = dave.getByRole('dialog', { name: 'Permission requested' });
  await consent.getByRole('button', { name: 'Allow' }).click();
  const cf = s.getByRole('region', { name: "Files on the customer's computer" });
  const listed = cf.getByRole('table', { name: 'Files in the folder shown' });
  await listed.getByRole('button', { name: 'Open folder Fotos' }).waitFor();
  // Copies go into a folder of Carol's: the browser's own storage stands in for the picker.
  await carol.evaluate(() => { window.showDirectoryPicker = async () => navigator.storage.getDirectory(); });
  await cf.getByRole('button', { name: 'Choose your folder for copies' }).click();
  await listed.getByRole('checkbox', { name: 'Select Fotos' }).check();
  await cf.getByRole('button', { name: 'Copy the ticked ones to your computer' }).click();
  await cf.getByRole('list', { name: 'File operations' }).getByText(/files \([^)]*\) copied into/).waitFor();
  const home = (await ask('home_tree')).files;
  const copied = await carol.evaluate(async () => {
    const out = {};
    const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');
    const walk = async (dir, at) => {
      for await (const [name, h] of dir.entries()) {
        const rel = at ? `${at}/${name}` : name;
        if (h.kind === 'directory') await walk(h, rel);
        else out[rel] = hex(await crypto.subtle.digest('SHA-256', await (await h.getFile()).arrayBuffer()));
      }
    };
    await walk(await navigator.storage.getDirectory(), '');
    return out;
  });
  results.f2_copied = copied;
  for (const [rel, sha] of Object.entries(home)) {
    check(copied[rel] === sha, `F2: ${rel} reached Carol's folder with the same SHA-256`);
  }
  check(Object.keys(copied).length === Object.keys(home).length, 'F2: nothing else was written in Carol\'s folder');
  // Two files of Carol's into Dave's folder Fotos.
  await listed.getByRole('button', { name: 'Open folder Fotos' }).click();
  await cf.getByRole('heading', { name: "Dave's computer: home/Fotos" }).waitFor();
  const sent = [
    { name: 'Bericht für Dave.txt', mimeType: 'text/plain', buffer: Buffer.from('ä'.repeat(5000)) },
    { name: 'tool.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(9_000_000, 7) },
  ];
  await cf.getByLabel('Files to send').setInputFiles(sent);
  await cf.getByRole('button', { name: 'Send to the folder shown' }).click();
  await listed.getByRole('checkbox', { name: 'Select tool.bin' }).waitFor();
  const after = (await ask('home_tree')).files;
  for (const f of sent) {
    const sha = crypto.createHash('sha256').update(f.buffer).digest('hex');
    check(after[`Fotos/${f.name}`] === sha, `F2: ${f.name} reached Dave's computer with the same SHA-256`);
  }
  // And Carol's own folder, as her side lists it, back into Dave's Fotos.
  const mine = cf.getByRole('table', { name: 'Files in your folder' });
  await mine.getByRole('checkbox', { name: 'Select your Fotos' }).check();
  await cf.getByRole('button', { name: 'Send the ticked ones to the folder shown' }).click();
  await listed.getByRole('button', { name: 'Open folder Fotos' }).waitFor();
  const back = (await ask('home_tree')).files;
  for (const [rel, sha] of Object.entries(copied)) {
    check(back[`Fotos/${rel}`] === sha, `F2: Carol's ${rel} reached Dave's Fotos with the same SHA-256`);
  }
  await shot(carol, 'helper-desktop-computer-files');
  // Not shared any more: each operation is asked in Dave's helper.
  await s.getByRole('tab', { name: 'Desktop' }).click();
  await s.getByRole('button', { name: 'End desktop sharing' }).click();
  await s.getByText('Dave is not sharing.').waitFor();
  await s.getByRole('tab', { name: 'Tools' }).click();
  await cf.getByLabel('New folder').fill('Neu');
  await cf.getByRole('button', { name: 'Make folder' }).click();
  results.f2_question = (await ask('answer', { expect: 'Carol asks to do this with your files' })).question;
  await listed.getByRole('button', { name: 'Open folder Neu' }).waitFor();
  carol.once('dialog', (d) => d.accept());
  await listed.getByRole('button', { name: 'Delete Neu' }).click();
  await ask('answer', { expect: 'delete "Fotos/Neu"' });
  await listed.getByRole('button', { name: 'Open folder Neu' }).waitFor({ state: 'detached' });
  check(!(await ask('home_tree')).folders.includes('Fotos/Neu'), 'F2: the folder made and deleted is gone');
  // M4, signing in as another user on Dave's computer.
  const login = s.getByRole('region', { name: 'Sign in as another user' });
  await login.getByRole('button', { name: 'Sign in as another user' }).click();
  results.m4_question = (await ask('answer', { expect: 'sign in to this computer as another user' })).question;
  await login.locator('.login-state').getByText('Dave allowed it: type the user name and password.').waitFor();
  await login.getByLabel('User name').fill(otherUser);
  await login.getByLabel('Password').fill('not-the-password');
  await login.getByRole('button', { name: 'Sign in' }).click();
  await login.locator('.login-state').getByText('The user name or password was not accepted').waitFor();
  check(await login.getByLabel('Password').inputValue() === '', 'M4: the password is cleared from the form after each try');
  await login.getByLabel('Password').fill(otherPassword);
  await login.getByRole('button', { name: 'Sign in' }).click();
  await login.locator('.login-state').getByText(`Signed in as ${otherUser}`).waitFor();
  const other = `${otherUser}'s screen on Dave's computer`;
  const magenta = await until(async () => {
    const p = await seen(carol, other, [[10, 10]]);
    return p && near(p.at[0], [255, 0, 255]) && p;
  }, "M4: Carol's console shows the other user's screen");
  results.m4_picture = magenta.size;
  await s.getByRole('tab', { name: 'Desktop' }).click();
  await s.getByText(`Signed in as ${otherUser} on Dave's computer`).waitFor();
  await s.getByRole('tab', { name: 'Tools' }).click();
  await dave.getByRole('listitem').filter({ hasText: `Your support representative is signed in as ${otherUser} on a separate screen` }).waitFor();
  await ask('notice', { user: otherUser });
  await shot(carol, 'helper-desktop-login-as-user');
  const [x, y] = await drawnAt(carol, [100, 100], other);
  await carol.mouse.click(x, y);
  await ask('expect_other_click');
  await login.getByRole('button', { name: 'Sign out' }).click();
  await login.getByText(`${otherUser} signed out; the customer's screen is back`).waitFor();
  await ask('notice_gone');
  check(!(await carol.locator(`video[aria-label="${other}"]`).filter({ visible: true }).count()), "M4: the other user's screen is gone from the console");
});
