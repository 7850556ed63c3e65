// Issue 18, item 4: a customer on a phone (a browser that cannot share its screen) answers a
// request to see it at once, in words on both pages, and nobody waits; and the CSR cancels a
// request still unanswered, which closes the customer's question.
// Usage: node phone.mjs BASE_URL CSR PASSWORD   (run by tests/browser_consoles.rs)

import { scenario, signInAndStart, joinByLink } from './harness.mjs';

const [base, csrUser, password] = process.argv.slice(2);

await scenario('phone', [], async ({ browser, check, results, shot }) => {
  const carol = await (await browser.newContext({ viewport: { width: 1280, height: 720 } })).newPage();
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  // As on Android and iOS browsers: no screen capture at all.
  await phone.addInitScript(() => {
    Object.defineProperty(MediaDevices.prototype, 'getDisplayMedia', { value: undefined, configurable: true });
  });
  const dave = await phone.newPage();
  for (const [who, p] of [['carol', carol], ['dave', dave]]) {
    p.on('console', (m) => { if (m.type() === 'error') console.error(`[${who}]`, m.text()); });
  }
  const { panel: s, link } = await signInAndStart(carol, base, csrUser, password, 'On a phone');
  await joinByLink(dave, base, link, 'Dave');
  await s.getByText('Dave joined').waitFor();

  await s.getByRole('tab', { name: 'Desktop' }).click();
  await s.getByRole('button', { name: "View customer's desktop" }).click();
  await carol.getByText('Dave cannot share a screen from this device (phone and tablet browsers cannot). Ask them to join from a computer.').waitFor();
  await dave.getByText('Carol asked to see your screen, but this device cannot share its screen. Carol has been told.').waitFor();
  check(!(await dave.locator('#consent').evaluate((d) => d.open)), 'no question is left open on the phone');
  check(await s.locator('.pending-requests').isHidden(), 'nothing waits on the console');
  await shot(dave, 'phone-cannot-share');

  // A request Dave does not answer: Carol takes it back.
  await s.getByRole('tab', { name: 'Session' }).click();
  await s.getByRole('button', { name: 'Record session' }).click();
  await dave.locator('#consent').getByText('Carol asks to').waitFor();
  const pending = s.locator('.pending-requests');
  await pending.getByText('Asked Dave to record the session: no answer yet.').waitFor();
  results.pending = await pending.innerText();
  await shot(carol, 'csr-pending-request');
  await pending.getByRole('button', { name: 'Cancel request' }).click();
  await carol.getByText('The request was cancelled.').waitFor();
  await dave.locator('#consent').waitFor({ state: 'hidden' });
  check(await pending.isHidden(), 'the cancelled request is gone from the console');
});
