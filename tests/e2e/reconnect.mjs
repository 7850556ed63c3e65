// Issue 18, item 1: a CSR whose network drops for a few seconds stays in the session. Carol's
// browser reaches the server through a TCP proxy of this script's own; cutting it drops her
// WebSocket and HTTP connections and refuses new ones, as a network drop would (the browser's
// offline mode leaves open WebSockets alone).
// - 3 s without network: Carol's page says it is reconnecting and when the session would end,
//   Dave's page says Carol's connection dropped; what Dave writes meanwhile is in Carol's chat
//   once she is back, both pages say so, and the session goes on.
// - Then Carol stays away past the grace: the session ends (Dave's page says so), and when her
//   network is back her page says the session ended meanwhile and shows its report.
// Usage: node reconnect.mjs BASE_URL CSR PASSWORD   (run by tests/browser_consoles.rs, with a
// reconnect grace of 8 s)

import net from 'node:net';
import { scenario, signInAndStart, joinByLink, sleep } from './harness.mjs';

const [base, csrUser, password] = process.argv.slice(2);

const target = new URL(base);
const sockets = new Set();
let cut = false;
const proxy = net.createServer((down) => {
  if (cut) {
    down.destroy();
    return;
  }
  const up = net.connect(Number(target.port), target.hostname);
  sockets.add(down);
  sockets.add(up);
  const end = () => {
    down.destroy();
    up.destroy();
    sockets.delete(down);
    sockets.delete(up);
  };
  for (const s of [down, up]) {
    s.on('error', end);
    s.on('close', end);
  }
  down.pipe(up);
  up.pipe(down);
});
await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
const via = `http://127.0.0.1:${proxy.address().port}`;
const drop = () => {
  cut = true;
  for (const s of sockets) s.destroy();
  sockets.clear();
};
const restore = () => { cut = false; };

await scenario('reconnect', [], async ({ browser, check, results, shot }) => {
  const carol = await (await browser.newContext({ viewport: { width: 1280, height: 720 } })).newPage();
  const dave = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
  for (const [who, p] of [['carol', carol], ['dave', dave]]) {
    p.on('console', (m) => { if (m.type() === 'error') console.error(`[${who}]`, m.text()); });
  }
  const { panel: s, link } = await signInAndStart(carol, via, csrUser, password, 'Network drop');
  await joinByLink(dave, base, link, 'Dave');
  await s.getByText('Dave joined').waitFor();

  // A drop of 3 s.
  drop();
  const own = s.locator('.connection-state');
  await own.getByText(/^Connection lost\. Reconnecting… The session ends in \d+ s unless you are back\.$/).waitFor();
  const daves = dave.locator('#connection');
  await daves.getByText(/^Carol's connection dropped\. Waiting for them to come back \(the session ends in \d+ s otherwise\)\.$/).waitFor();
  await shot(carol, 'reconnect-csr-reconnecting');
  await shot(dave, 'reconnect-customer-csr-away');
  await dave.locator('#chat-section').getByLabel('Message', { exact: true }).fill('Are you still there?');
  await dave.locator('#chat-section').getByLabel('Message', { exact: true }).press('Enter');
  await dave.locator('.chat-log').getByText('Are you still there?').waitFor();
  await sleep(3000); // the outage itself
  restore();
  await own.getByText('Connected again. The session is up to date.').waitFor();
  await daves.getByText('Carol is connected again.').waitFor();
  // What Dave wrote while Carol was away reached her, once.
  const carolsLog = s.locator('.chat-log');
  await carolsLog.getByText('Are you still there?').waitFor();
  check(await carolsLog.getByText('Are you still there?').count() === 1, 'the line said while away is shown once');
  results.carols_chat = await carolsLog.innerText();
  // And the session goes on both ways.
  await s.locator('.chat').getByLabel('Message', { exact: true }).fill('Yes, back now');
  await s.locator('.chat').getByLabel('Message', { exact: true }).press('Enter');
  await dave.locator('.chat-log').getByText('Yes, back now').waitFor();

  // Away past the grace (8 s): the session ends without her.
  drop();
  await own.getByText(/^Connection lost\. Reconnecting…/).waitFor();
  await dave.getByText('The support session has ended. Thank you.').waitFor({ timeout: 30000 });
  restore();
  await own.getByText('The connection was lost, and the session ended meanwhile.').waitFor({ timeout: 30000 });
  await carol.getByText('The session has ended. Its notes are saved with the session report.').waitFor();
  await s.locator('.report').waitFor();
  await shot(carol, 'reconnect-csr-session-ended-meanwhile');
});
proxy.close();
