// The CSR gives control of their desktop to the customer through the CSR's own Tandem Helper
// (SPEC D4, D5), clicked through in Debian's headless Chromium. Run by
// helper/tests/join/give_control.rs, which runs Carol's real `tandem-helper join` in its window
// on a private desktop (Xvfb, AT-SPI; a test window of four coloured quadrants at 700,100,
// 400x300, on a 1280x800 screen), answers it as Carol would and checks what reaches the test
// window; the two sides speak in lines: this script prints {"step": ...} and waits for "ok".
// - Carol starts a session; Dave joins by the invite link.
// - Carol clicks "Give control of my desktop": her console shows a code and the command (step
//   "code"); the test types it into her helper's window and presses Allow there.
// - Dave's page shows Carol's screen (the quadrants' colours read from the video's pixels) and
//   says he controls it; he clicks a point and types "hi" (step "clicked").
// - Carol clicks "Take control back": Dave's page says so; Dave types (step "held").
// - Dave clicks the screen to take control, then clicks another point (step "retaken"); the
//   test presses "Take control back" in Carol's helper; Dave's page says so; Dave types (step
//   "held in the helper").
// - Dave stops watching (D5): Carol's console says nobody controls her desktop (step "ended").
// Usage: node give_control.mjs BASE_URL CSR PASSWORD

import readline from 'node:readline';
import { scenario, until, signInAndStart, joinByLink } from './harness.mjs';

const [base, csrUser, password] = process.argv.slice(2);
const input = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const tell = (step, data = {}) => console.log(JSON.stringify({ step, ...data }));
const answered = async () => {
  const { value } = await input.next();
  if (value !== 'ok') throw new Error(`the test said ${value}`);
};

// The screen's size and the test window's quadrants (screen points and colours).
const SCREEN = [1280, 800];
const WINDOW = [700, 100];
const w = (x, y) => [WINDOW[0] + x, WINDOW[1] + y];
const PATTERN = [[...w(100, 75), [255, 0, 0]], [...w(300, 75), [0, 255, 0]], [...w(100, 225), [0, 0, 255]], [...w(300, 225), [255, 255, 0]]];
const LABEL = "^Carol's screen$";

// The visible video whose accessible name matches `label`: the colours at picture points, and
// where picture points are on the page (the picture is scaled to fit, centred).
const video = (page, label, points) => page.evaluate(([l, pts]) => {
  const re = new RegExp(l);
  const v = [...document.querySelectorAll('video')]
    .find((e) => re.test(e.getAttribute('aria-label') || '') && e.offsetParent && e.videoWidth);
  if (!v) return null;
  const c = document.createElement('canvas');
  c.width = v.videoWidth;
  c.height = v.videoHeight;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0);
  const r = v.getBoundingClientRect();
  const s = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
  const ox = r.left + (r.width - v.videoWidth * s) / 2;
  const oy = r.top + (r.height - v.videoHeight * s) / 2;
  return {
    size: [v.videoWidth, v.videoHeight],
    colours: pts.map(([x, y]) => [...g.getImageData(x, y, 1, 1).data.slice(0, 3)]),
    at: pts.map(([x, y]) => [ox + (x + 0.5) * s, oy + (y + 0.5) * s]),
  };
}, [label, points]);

const near = (got, want) => got && want.every((w, i) => Math.abs(got[i] - w) <= 48);

await scenario('give_control', [], async ({ browser, check, results, shot }) => {
  const carol = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  carol.on('console', (m) => { if (m.type() === 'error') console.error('[carol]', m.text()); });
  const { panel: s, link } = await signInAndStart(carol, base, csrUser, password, 'Show me how');

  const dave = await (await browser.newContext({ viewport: { width: 1000, height: 1000 } })).newPage();
  dave.on('console', (m) => { if (m.type() === 'error') console.error('[dave]', m.text()); });
  await joinByLink(dave, base, link, 'Dave');
  await s.getByText('Dave joined').waitFor();
  const watching = dave.getByRole('region', { name: "Your support representative's screen" });

  // Carol asks; without a helper of hers, her console shows the code and the command.
  await s.getByRole('tab', { name: 'Desktop' }).click();
  const desk = s.getByRole('tabpanel', { name: 'Desktop' });
  await desk.getByRole('button', { name: 'Give control of my desktop' }).click();
  await desk.getByText('Waiting for your Tandem Helper...').waitFor();
  const code = (await desk.locator('.give-code').innerText()).trim();
  const command = await desk.locator('.give-command').innerText();
  // The server's public address (its configured one, not this test's) and the code.
  check(/^tandem-helper join \S+ \d{8}$/.test(command.trim()) && command.trim().endsWith(code.replace(' ', '')), `the command is shown: ${command}`);
  tell('code', { code });

  // Her helper asks her (the test presses Allow); Dave sees her screen and controls it.
  await desk.getByText('Dave controls your desktop through your Tandem Helper.').waitFor({ timeout: 30000 });
  await watching.getByText("You control Carol's screen: your pointer and keys go to their computer.").waitFor();
  check(!(await dave.getByRole('dialog').isVisible()), 'Dave is asked nothing');
  const seen = await until(async () => {
    const v = await video(dave, LABEL, PATTERN.map(([x, y]) => [x, y]));
    return v && v.size[0] === SCREEN[0] && v.size[1] === SCREEN[1]
      && PATTERN.every(([, , c], i) => near(v.colours[i], c)) && v;
  }, "the test window's pattern on Dave's page", 30000);
  results.colours = seen.colours;
  await shot(dave, 'customer-controls-csr-screen');

  // Dave clicks the window's point (200, 150) and types "hi".
  const click = async ([x, y]) => {
    const v = await video(dave, LABEL, [[x, y]]);
    await dave.mouse.click(v.at[0][0], v.at[0][1]);
  };
  await click(w(200, 150));
  await dave.keyboard.type('hi');
  tell('clicked');
  await answered();

  // Carol takes control back by clicking; Dave's page says how to take it again; his keys go
  // nowhere.
  await desk.getByRole('button', { name: 'Take control back' }).click();
  await desk.getByText(/You took control back: Dave can see your screen but not use it/).waitFor();
  await watching.getByText('Carol took control back: click the screen to take control.').waitFor();
  await dave.keyboard.type('x');
  tell('held');
  await answered();

  // Dave clicks to take it (the window's (100, 75): not passed on), then clicks the window's
  // (350, 220).
  await click(w(100, 75));
  await watching.getByText("You control Carol's screen: your pointer and keys go to their computer.").waitFor();
  await desk.getByText('Dave controls your desktop through your Tandem Helper.').waitFor();
  await click(w(350, 220));
  tell('retaken');
  // The test presses "Take control back" in Carol's helper: both pages say so; Dave types.
  await answered();
  await desk.getByText(/You took control back: Dave can see your screen but not use it/).waitFor();
  await watching.getByText('Carol took control back: click the screen to take control.').waitFor();
  await dave.keyboard.type('y');
  tell('held in the helper');
  await answered();

  // D5: Dave ends it.
  await watching.getByRole('button', { name: 'Stop watching' }).click();
  await carol.getByText('Nobody controls your desktop now.').first().waitFor();
  await watching.waitFor({ state: 'hidden' });
  tell('ended');
});
