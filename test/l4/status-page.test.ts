// The status page's L4 table in a real browser (Debian's chromium via playwright-core): a TCP
// listener's row shows its open connections and bytes live, with a row per pool, and the page
// raises no script error.

import { BROWSER_SKIP, openPage } from '../helpers/browser.js';
import t from 'tap';
import { ensureBuilt, freePort, startSluice } from '../helpers/sluice.js';
import { exchange } from './fixtures/cli.js';
import { connect, echo } from './fixtures/net.js';

await ensureBuilt();

t.test('status page: L4 listeners with live counters', { skip: BROWSER_SKIP }, async (t) => {
  const backend = await echo(t);
  const [l4, admin] = await Promise.all([freePort(), freePort()]);
  await startSluice(t, {
    upstreams: [`tcp://127.0.0.1:${backend.port}`],
    env: { SLUICE_TCP_LISTEN: `127.0.0.1:${l4}`, SLUICE_ADMIN_LISTEN: `127.0.0.1:${admin}` },
  });
  const page = await openPage(t);
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  await page.goto(`http://127.0.0.1:${admin}/`);
  const name = `tcp 127.0.0.1:${l4}`;
  const row = page.locator(`tr[data-listener="${name}"]`);
  await row.waitFor({ timeout: 5000 });
  t.ok(await page.locator('#l4').isVisible(), 'the L4 section shows when there are L4 listeners');

  const held = await connect(l4);
  await exchange(held, 'hello');
  await page.waitForFunction((n) => document.querySelector(`tr[data-listener="${n}"] td.active`)?.textContent === '1', name, { timeout: 5000 });
  t.equal(await row.locator('td.opened').textContent(), '1');
  t.equal(await row.locator('td.bytes-in').textContent(), '5 B');
  t.match(await page.locator('#l4-rows').textContent(), /pool default/, 'a row per pool');
  held.destroy();
  await page.waitForFunction((n) => document.querySelector(`tr[data-listener="${n}"] td.active`)?.textContent === '0', name, { timeout: 5000 });
  t.same(problems, [], 'no script errors');
});
