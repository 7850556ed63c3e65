// SPEC F1, basic file transfer, on the consoles in Debian's headless Chromium:
// - Carol (CSR) starts a session; Dave joins by the invite link.
// - Carol asks for file transfer in the Tools tab; Dave allows it.
// - Carol publishes two files (one with a non-ASCII name) with the file picker; both are listed
//   as published on her console.
// - A window on Dave's page lists both; he saves each: the saved bytes have the SHA-256 of the
//   originals, under their names, and the page says each was checked.
// - Carol ends file transfer: Dave's window closes and his page says so in a sentence.
// Usage: node files.mjs BASE_URL CSR PASSWORD   (run by tests/browser_consoles.rs)

import crypto from 'node:crypto';
import fs from 'node:fs';
import { scenario, signInAndStart, joinByLink } from './harness.mjs';

const [base, csrUser, password] = process.argv.slice(2);
const sha = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

await scenario('files', [], async ({ browser, check, results, shot }) => {
  const carol = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  carol.on('console', (m) => { if (m.type() === 'error') console.error('[carol]', m.text()); });
  const { panel: s, link } = await signInAndStart(carol, base, csrUser, password, 'Printer driver');
  const dave = await (await browser.newContext({ viewport: { width: 390, height: 844 }, acceptDownloads: true })).newPage();
  dave.on('console', (m) => { if (m.type() === 'error') console.error('[dave]', m.text()); });
  await joinByLink(dave, base, link, 'Dave');
  await s.getByText(/Publish files for Dave to download/).waitFor();

  await s.getByRole('button', { name: 'Send files to the customer' }).click();
  const consent = dave.getByRole('dialog', { name: 'Permission requested' });
  await consent.getByText(/asks to transfer files with your computer/).waitFor();
  await consent.getByRole('button', { name: 'Allow' }).click();
  await s.getByText(/File transfer with Dave is on/).waitFor();
  check(await dave.locator('#files').isVisible(), 'Dave\'s page opens the files window once he allowed file transfer');

  const files = [
    { name: 'Druckertreiber für Dave.zip', mimeType: 'application/zip', buffer: crypto.randomBytes(3 * 1024 * 1024 + 17) },
    { name: 'steps.txt', mimeType: 'text/plain', buffer: Buffer.from('1. Unplug the printer.\n2. Install the driver.\n') },
  ];
  await s.getByLabel('Files to publish').setInputFiles(files);
  await s.getByRole('button', { name: 'Publish', exact: true }).click();
  for (const f of files) await s.getByRole('button', { name: `Withdraw ${f.name}` }).waitFor();
  results.carol_list = await s.locator('.files-list').innerText();
  await shot(carol, 'csr-console-files-published');

  const window = dave.getByRole('region', { name: 'Files from your support representative' });
  results.saved = [];
  for (const f of files) {
    const save = window.getByRole('button', { name: `Save ${f.name}` });
    await save.waitFor();
    const [download] = await Promise.all([dave.waitForEvent('download'), save.click()]);
    const saved = fs.readFileSync(await download.path());
    check(download.suggestedFilename() === f.name, `saved under its name: ${download.suggestedFilename()}`);
    check(sha(saved) === sha(f.buffer), `${f.name}: the saved file has the SHA-256 of the one Carol published`);
    results.saved.push({ name: download.suggestedFilename(), bytes: saved.length, sha256: sha(saved) });
  }
  await window.getByText('Saved; checked: it is exactly the file that was sent.').nth(1).waitFor();
  await shot(dave, 'customer-files-window');

  await s.getByRole('button', { name: 'End file transfer' }).click();
  await dave.getByText(/File transfer has ended: the files are no longer offered/).waitFor();
  check(!(await dave.locator('#files').isVisible()), 'Dave\'s files window closed when file transfer ended');
  await s.getByText(/Publish files for Dave to download/).waitFor();
  check(await s.locator('.files-list li').count() === 0, 'Carol\'s list is empty once file transfer ended');
  results.dave_status = await dave.locator('#status').textContent();
  await shot(dave, 'customer-files-window-closed');
});
