// The CSR shows their own screen and applications (SPEC D3, D5, D7, D13), clicked through in
// Debian's headless Chromium:
// - Carol (CSR) starts a session; Dave joins by the invite link.
// - Carol's picker is cancelled: her console says so and nothing starts.
// - Carol shows her screen (the test's getDisplayMedia gives a canvas of a known colour): Dave's
//   page says "Carol is showing you their screen." and shows it; the test reads the colour of
//   the video's pixels there. Dave is asked nothing.
// - Dave stops watching (D5): his page hides the screen; Carol's console says he stopped.
// - Carol shows two application windows (two picks, two colours): Dave's page shows both, each
//   in its own viewer, checked by colour. Carol stops showing: Dave's page says so.
// Usage: node show.mjs BASE_URL CSR PASSWORD   (run by tests/server/showing.rs)

import { scenario, until, signInAndStart, joinByLink } from './harness.mjs';

const [base, csrUser, password] = process.argv.slice(2);

// The colours the test's screens are painted in: the desktop, then each window picked.
const DESKTOP = [0, 96, 255];
const WINDOWS = [[255, 96, 0], [0, 255, 0]];

// Replaces getDisplayMedia on Carol's page: each pick is a canvas painted in the next colour
// (the desktop's for a monitor surface, the windows' in turn for a window surface); a pick
// after `window.cancelNextPick = true` is cancelled as the browser's picker would be.
function fakePicker([desktop, windows]) {
  let nextWindow = 0;
  window.picks = [];
  navigator.mediaDevices.getDisplayMedia = async (constraints) => {
    if (window.cancelNextPick) {
      window.cancelNextPick = false;
      throw new DOMException('Permission denied by user', 'NotAllowedError');
    }
    const surface = constraints?.video?.displaySurface;
    window.picks.push(surface);
    const [r, g, b] = surface === 'window' ? windows[nextWindow++ % windows.length] : desktop;
    const canvas = document.createElement('canvas');
    canvas.width = 640;
    canvas.height = 360;
    const g2 = canvas.getContext('2d');
    const paint = () => { g2.fillStyle = `rgb(${r}, ${g}, ${b})`; g2.fillRect(0, 0, 640, 360); };
    paint();
    // A canvas stream sends frames only when the canvas is painted.
    setInterval(paint, 50);
    return canvas.captureStream(15);
  };
}

// The colour at the centre of each visible <video> whose accessible name matches `label`.
const colours = (page, label) => page.evaluate((l) => {
  const re = new RegExp(l);
  return [...document.querySelectorAll('video')]
    .filter((v) => re.test(v.getAttribute('aria-label') || '') && v.offsetParent && v.videoWidth)
    .map((v) => {
      const c = document.createElement('canvas');
      c.width = v.videoWidth;
      c.height = v.videoHeight;
      const g = c.getContext('2d');
      g.drawImage(v, 0, 0);
      return [...g.getImageData(c.width >> 1, c.height >> 1, 1, 1).data.slice(0, 3)];
    });
}, label);

const near = (got, want) => got && want.every((w, i) => Math.abs(got[i] - w) <= 40);

await scenario('show', [], async ({ browser, check, results, shot }) => {
  const carolCtx = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  await carolCtx.addInitScript(fakePicker, [DESKTOP, WINDOWS]);
  const carol = await carolCtx.newPage();
  carol.on('console', (m) => { if (m.type() === 'error') console.error('[carol]', m.text()); });
  const { panel: s, link } = await signInAndStart(carol, base, csrUser, password, 'Where is the setting');

  const dave = await (await browser.newContext({ viewport: { width: 800, height: 900 } })).newPage();
  dave.on('console', (m) => { if (m.type() === 'error') console.error('[dave]', m.text()); });
  await joinByLink(dave, base, link, 'Dave');
  await s.getByText('Dave joined').waitFor();
  const watching = dave.getByRole('region', { name: "Your support representative's screen" });

  // The picker cancelled: said plainly, nothing starts.
  await s.getByRole('tab', { name: 'Desktop' }).click();
  await carol.evaluate(() => { window.cancelNextPick = true; });
  await s.getByRole('button', { name: 'Show my screen' }).click();
  await carol.getByText('You closed the picker without choosing: nothing is shown.').waitFor();
  check(await s.getByRole('tabpanel', { name: 'Desktop' }).getByText('You are not showing your screen.').isVisible(), 'still not showing after a cancelled pick');
  check(!(await watching.isVisible()), 'Dave sees nothing after a cancelled pick');

  // D3: Carol shows her screen; Dave sees it, in its colour, and is asked nothing.
  await s.getByRole('button', { name: 'Show my screen' }).click();
  await s.getByRole('tabpanel', { name: 'Desktop' }).getByText('You are showing your screen to Dave and everyone in the session.').waitFor();
  await watching.getByText('Carol is showing you their screen.').waitFor();
  const desk = await until(async () => {
    const c = await colours(dave, "^Carol's screen$");
    return c.length === 1 && near(c[0], DESKTOP) && c;
  }, "Carol's screen in its colour on Dave's page").catch((e) => { check(false, String(e)); return null; });
  results.desktop = desk;
  check(!(await dave.getByRole('dialog', { name: 'Permission requested' }).isVisible()), 'Dave is asked nothing to see the screen');
  check(!/show_desktop|activity_/.test(await dave.locator('body').innerText()), 'no raw code on Dave\'s page');
  await shot(dave, 'customer-sees-csr-screen');

  // D5 from Dave's side.
  await watching.getByRole('button', { name: 'Stop watching' }).click();
  await carol.getByText('Dave stopped watching your screen.').waitFor();
  await watching.waitFor({ state: 'hidden' });
  await s.getByRole('tabpanel', { name: 'Desktop' }).getByText('You are not showing your screen.').waitFor();

  // D7: two windows, one pick each; Dave sees both, each its own colour.
  await s.getByRole('tab', { name: 'Application' }).click();
  await s.getByRole('button', { name: 'Show my applications' }).click();
  await s.getByRole('tabpanel', { name: 'Application' }).getByText('You are showing one application window to Dave and everyone in the session.').waitFor();
  await s.getByRole('button', { name: 'Show another application' }).click();
  await s.getByRole('tabpanel', { name: 'Application' }).getByText('You are showing 2 application windows to Dave and everyone in the session.').waitFor();
  await watching.getByText('Carol is showing you 2 application windows.').waitFor();
  const windows = await until(async () => {
    const c = await colours(dave, "^Carol's window \\d$");
    return c.length === 2 && WINDOWS.every((w) => c.some((got) => near(got, w))) && c;
  }, "both of Carol's windows in their colours on Dave's page").catch((e) => { check(false, String(e)); return null; });
  results.windows = windows;
  results.picks = await carol.evaluate(() => window.picks);
  check(JSON.stringify(results.picks) === JSON.stringify(['monitor', 'window', 'window']), `the picker was asked for the screen, then windows: ${results.picks}`);
  await shot(dave, 'customer-sees-csr-windows');

  // D5 from Carol's side.
  await s.getByRole('button', { name: 'Stop showing' }).click();
  await carol.getByText('You stopped showing your screen.').waitFor();
  await dave.getByText('Carol stopped showing their screen.').waitFor();
  await watching.waitFor({ state: 'hidden' });
  check(!(await dave.locator('#csr-windows video').count()), 'no viewer is left on Dave\'s page');
});
