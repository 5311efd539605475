// The status page in a real browser (Debian's chromium driven by playwright-core): it loads with a
// token from ?token=, shows every backend live, shows a killed backend go down (active health
// checks), and its Drain button drains through the API; backends are grouped by pool and the route
// table shows each route's hits. Saves a screenshot to test-output/.

import t from 'tap';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startBackend } from '../helpers/backends.js';
import { BROWSER_SKIP, openPage } from '../helpers/browser.js';
import { bearer, request, startWithAdmin } from './admin-helpers.js';

const OUTPUT = fileURLToPath(new URL('../../test-output/', import.meta.url));
const TOKEN = 'status-page-token-0123456789';

t.test('status page: live rows, a killed backend goes down, drain button', { skip: BROWSER_SKIP }, async (t) => {
  const a = await startBackend(t);
  const b = await startBackend(t);
  const { sluice, admin } = await startWithAdmin(t, {
    upstreams: [a.url, b.url],
    workers: 2,
    env: {
      SLUICE_ADMIN_TOKEN: TOKEN,
      SLUICE_HEALTH_CHECK: 'on',
      SLUICE_HEALTH_INTERVAL_MS: '100',
      SLUICE_HEALTH_TIMEOUT_MS: '200',
      SLUICE_HEALTHY_THRESHOLD: '1',
      SLUICE_UNHEALTHY_THRESHOLD: '1',
    },
  });
  const idA = `127.0.0.1:${a.port}`;
  const idB = `127.0.0.1:${b.port}`;

  const page = await openPage(t);
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('dialog', (d) => {
    problems.push(`unexpected dialog: ${d.message()}`);
    void d.dismiss();
  });

  await page.goto(`${admin}/?token=${TOKEN}`);
  const state = (id: string) => page.locator(`tr[data-backend="${id}"] td.state`);
  await state(idA).filter({ hasText: 'up' }).waitFor({ timeout: 5000 });
  await state(idB).filter({ hasText: 'up' }).waitFor({ timeout: 5000 });
  t.notMatch(page.url(), 'token', 'the token is taken out of the address bar');
  t.equal(await page.locator('#workers').textContent(), '2 / 2');

  for (let i = 0; i < 20; i++) await request(`${sluice.url}/`);
  await page.waitForFunction(
    ([x, y]) => {
      const n = (id: string) => Number(document.querySelector(`tr[data-backend="${id}"] td.requests`)?.textContent);
      return n(x!) + n(y!) === 20;
    },
    [idA, idB],
    { timeout: 5000 },
  );
  t.pass('request counts reach the page');
  t.equal(await page.locator('tr.pool[data-pool="default"]').count(), 1, 'backends are grouped under their pool');
  t.match(await page.locator('tr.pool[data-pool="default"]').textContent(), /pool default.*2 \/ 2 up/);
  await page.waitForFunction(() => document.querySelector('#routes tr[data-route="route-0"] td.hits')?.textContent !== null, undefined, { timeout: 5000 });
  t.equal(await page.locator('#routes tr[data-route="route-0"] td.action').textContent(), 'pool default', 'the route table is shown');

  // Kill backend b: the active checker marks it down and the page shows it within a poll or two.
  await b.close();
  await state(idB).filter({ hasText: 'down' }).waitFor({ timeout: 5000 });
  t.equal(await page.locator(`tr[data-backend="${idB}"]`).getAttribute('class'), 'down');
  t.equal(await page.locator('#up').textContent(), '1 / 2');

  // Drain a with its button: the POST carries the token and X-Sluice-Admin.
  await page.locator(`tr[data-backend="${idA}"] button.drain`).click();
  await state(idA).filter({ hasText: 'draining' }).waitFor({ timeout: 5000 });
  const view = await request(`${admin}/api/backends/${idA}`, { headers: bearer(TOKEN) });
  t.match(JSON.parse(view.body), { admin: 'draining', available: false });
  t.ok(await page.locator(`tr[data-backend="${idA}"] button.enable`).isVisible(), 'Enable offered instead');
  t.ok(sluice.logs().some((l) => l.msg === 'admin change' && l.backend === idA && l.action === 'drain'));

  mkdirSync(OUTPUT, { recursive: true });
  await page.screenshot({ path: `${OUTPUT}status-page.png`, fullPage: true });
  t.ok(existsSync(`${OUTPUT}status-page.png`), 'screenshot saved to test-output/status-page.png');
  t.same(problems, [], 'no script errors, CSP violations or dialogs');
});
