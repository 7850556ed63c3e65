// SPEC M2, the script library on the dashboard, in Debian's headless Chromium:
// - Ann (admin) adds the categories Printing and Network; a taken name is refused beside the field.
// - Carol (CSR) adds "Clear print queue" with a script and an input file, published.
// - She adds another as "clear PRINT queue": refused beside the Name field, with the form still
//   filled; she changes the name there and it is saved.
// - A script file of 1 MiB and one byte is refused beside the Script file field.
// - The list sorts by a column; Carol edits her script; Bob (agent) sees the published scripts
//   and may not edit or delete Carol's; Carol deletes hers.
// Usage: node scripts.mjs BASE_URL ADMIN CSR AGENT PASSWORD   (run by tests/browser_consoles.rs)

import { scenario } from './harness.mjs';

const [base, adminUser, csrUser, agentUser, password] = process.argv.slice(2);

async function signIn(browser, user) {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.error(`[${user}]`, m.text()); });
  page.on('dialog', (d) => d.accept());
  await page.goto(`${base}/`);
  await page.getByLabel('Username').fill(user);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText(/^Signed in as/).first().waitFor();
  return page;
}

const file = (name, text) => ({ name, mimeType: 'text/plain', buffer: Buffer.from(text) });

await scenario('scripts', [], async ({ browser, check, results, shot }) => {
  const ann = await signIn(browser, adminUser);
  const lib = ann.getByRole('region', { name: 'Script library' });
  for (const name of ['Printing', 'Network']) {
    await lib.getByLabel('New category').fill(name);
    await lib.getByRole('button', { name: 'Add category' }).click();
    await lib.getByRole('listitem').filter({ hasText: `${name} (0 scripts)` }).waitFor();
  }
  await lib.getByLabel('New category').fill('printing');
  await lib.getByRole('button', { name: 'Add category' }).click();
  await lib.locator('#category-name-error').filter({ hasText: 'exists already' }).waitFor();

  const carol = await signIn(browser, csrUser);
  const cl = carol.getByRole('region', { name: 'Script library' });
  const add = async (name, category, script, input) => {
    await cl.getByLabel('Name', { exact: true }).fill(name);
    await cl.getByLabel('Category', { exact: true }).selectOption({ label: category });
    await cl.getByLabel('Description').fill(`${name}: what it does.`);
    await cl.getByLabel(/Publish to the library/).check();
    await cl.getByLabel(/^Script file/).setInputFiles(script);
    if (input) await cl.getByLabel(/^Input file/).setInputFiles(input);
    await cl.getByRole('button', { name: 'Add script' }).click();
  };
  await add('Clear print queue', 'Printing', file('clear.sh', '#!/bin/sh\nlpstat -o\n'), file('printers.txt', 'office\n'));
  await carol.getByText('Clear print queue is in the library.').waitFor();
  await cl.getByRole('row').filter({ hasText: 'Clear print queue' }).waitFor();

  // A duplicate name: refused beside the field; the form keeps what was typed.
  await add('clear PRINT queue', 'Network', file('other.sh', 'echo other\n'));
  const nameError = cl.locator('#script-name-error');
  await nameError.filter({ hasText: 'a script with that name is in the library already' }).waitFor();
  results.duplicate = await nameError.textContent();
  check(await cl.getByLabel('Name', { exact: true }).getAttribute('aria-invalid') === 'true', 'the Name field is marked invalid');
  check(await cl.getByLabel('Description').inputValue() === 'clear PRINT queue: what it does.', 'the form keeps the description');
  await shot(carol, 'script-library-duplicate-name');
  await cl.getByLabel('Name', { exact: true }).fill('Reset network');
  await cl.getByRole('button', { name: 'Add script' }).click();
  await carol.getByText('Reset network is in the library.').waitFor();
  check(await nameError.isHidden(), 'the error is gone once fixed');

  // One byte over 1 MiB: refused beside the Script file field.
  await add('Too big', 'Network', { name: 'big.sh', mimeType: 'text/plain', buffer: Buffer.alloc(1024 * 1024 + 1, 97) });
  await cl.locator('#script-file-error').filter({ hasText: 'over 1048576 bytes' }).waitFor();
  results.too_large = await cl.locator('#script-file-error').textContent();

  // Sorting: by category, descending on a second click.
  const firstName = () => cl.locator('#script-table tbody tr').first().locator('td').first().textContent();
  await cl.getByRole('button', { name: 'Category', exact: true }).click();
  check((await firstName()) === 'Reset network', 'sorted by category: Network first');
  await cl.getByRole('button', { name: 'Category', exact: true }).click();
  check((await firstName()) === 'Clear print queue', 'a second click reverses: Printing first');
  check(await cl.locator('th[aria-sort="descending"]').count() === 1, 'the sorted column says so');

  // Carol edits hers: the file stays, the description changes.
  await cl.getByRole('button', { name: 'Edit Clear print queue' }).click();
  await cl.getByLabel('Description').fill('Clears every queue.');
  await cl.getByRole('button', { name: 'Save changes' }).click();
  await carol.getByText('Clear print queue is saved.').waitFor();

  // Bob sees both published scripts, and no way to change Carol's.
  const bob = await signIn(browser, agentUser);
  const bl = bob.getByRole('region', { name: 'Script library' });
  await bl.getByRole('row').filter({ hasText: 'Reset network' }).waitFor();
  check(await bl.getByRole('row').filter({ hasText: 'Clear print queue' }).count() === 1, 'Bob sees the published script');
  check(await bl.getByRole('button', { name: /^(Edit|Delete) / }).count() === 0, "Bob may not edit or delete Carol's scripts");

  await cl.getByRole('button', { name: 'Delete Reset network' }).click();
  await carol.getByText('Reset network is deleted.').waitFor();
  results.carol_list = await cl.locator('#script-table tbody').innerText();
  await shot(carol, 'script-library');
});
