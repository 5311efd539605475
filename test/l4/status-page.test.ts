// The status page's L4 table in a real browser (Debian's chromium via playwright-core): a TCP
// listener's row shows its open connections and bytes live, with a row per pool, and the page
// raises no script error.

import { existsSync } from 'node:fs';
import t from 'tap';
import { ensureBuilt, freePort, startSluice } from '../helpers/sluice.js';
import { exchange } from './fixtures/cli.js';
import { connect, echo } from './fixtures/net.js';

const CHROMIUM = '/usr/bin/chromium';
await ensureBuilt();

t.test('status page: L4 listeners with live counters', { skip: existsSync(CHROMIUM) ? false : `no browser: ${CHROMIUM} is missing` }, async (t) => {
  const { chromium } = await import('playwright-core');
  const backend = await echo(t);
  const [l4, admin] = await Promise.all([freePort(), freePort()]);
  await startSluice(t, {
    upstreams: [`tcp://127.0.0.1:${backend.port}`],
    env: { SLUICE_TCP_LISTEN: `127.0.0.1:${l4}`, SLUICE_ADMIN_LISTEN: `127.0.0.1:${admin}` },
  });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 420 } });
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
