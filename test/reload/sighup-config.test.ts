// SIGHUP with only SLUICE_CONFIG set (no SLUICE_ENV_FILE): the config file is re-read, validated
// like `sluice --check`, and its pools and routes applied in one step. A route-only edit is a
// change; an invalid file is refused with every error named and the running table kept; unchanged
// pools keep their slots. Under keep-alive load, a swap from one route table to another fails no
// request and closes no connection.

import t from 'tap';
import { startBackend, type HttpBackend } from '../helpers/backends.js';
import { request, startWithAdmin } from '../admin/admin-helpers.js';
import { keepAliveLoad } from '../helpers/keep-alive-load.js';
import { startSluice, ensureBuilt } from '../helpers/sluice.js';
import { until } from '../helpers/wait.js';

async function get<T>(url: string): Promise<T> {
  const r = await request(url);
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${r.body}`);
  return JSON.parse(r.body) as T;
}

interface Slots {
  backends: { slot: number; id: string; pool: string }[];
}

t.test('SIGHUP re-reads SLUICE_CONFIG alone: route edits, pool edits, refusals', async (t) => {
  const [a, b, c] = [await startBackend(t), await startBackend(t), await startBackend(t)];
  const pools = { api: { upstreams: [a.url] }, web: { upstreams: [b.url] } };
  const { sluice, admin } = await startWithAdmin(t, {
    upstreams: [],
    config: { pools, routes: [{ name: 'api', match: { path_prefix: '/api' }, pool: 'api' }, { name: 'web', match: {}, pool: 'web' }] },
  });
  t.notOk(sluice.child.spawnargs.some((x) => x.includes('ENV_FILE')), 'no SLUICE_ENV_FILE');
  const routeNames = async () => (await get<{ routes: { name: string }[] }>(`${admin}/api/routes`)).routes.map((r) => r.name);
  const slots = async () => (await get<Slots>(`${admin}/api/backends`)).backends.map((x) => `${x.pool} ${x.id} ${x.slot}`);
  const before = await slots();

  // The same file again: nothing to do.
  t.match(await sluice.reload(), { msg: 'reload: configuration unchanged' });

  const hits = async () => (await get<{ routes: { hits: number }[] }>(`${admin}/api/routes`)).routes.map((r) => r.hits);
  t.equal((await request(`${sluice.url}/api/x`)).status, 200);
  t.equal((await request(`${sluice.url}/other`)).status, 200);
  await until('the hits to reach the table', async () => (await hits()).join() === '1,1');

  // A route-only edit.
  sluice.writeConfig({ pools, routes: [{ name: 'v2', match: { path_prefix: '/v2' }, pool: 'api' }, { name: 'rest', match: {}, pool: 'web' }] });
  const edited = await sluice.reload();
  t.match(edited, { msg: 'configuration reloaded', changed: ['routes'], pools: 2, routes: 2 });
  t.same(await routeNames(), ['v2', 'rest'], 'the new table is the running one');
  t.same(await hits(), [0, 0], 'the hit counters start again with the new table');
  t.equal((await request(`${sluice.url}/v2/x`)).status, 200);
  t.equal(a.requests.at(-1)?.url, '/v2/x', 'the new route sends /v2 to api');
  await until('the new route to count its hit', async () => (await hits()).join() === '1,0');
  t.same(await slots(), before, 'pools unchanged: same backends, same slots');

  // A pool edit: web gains c; api keeps its slot.
  sluice.writeConfig({ pools: { ...pools, web: { upstreams: [b.url, c.url] } }, routes: [{ name: 'v2', match: { path_prefix: '/v2' }, pool: 'api' }, { name: 'rest', match: {}, pool: 'web' }] });
  t.match(await sluice.reload(), { msg: 'configuration reloaded', changed: ['pools.web'] });
  const after = await slots();
  t.same(after.slice(0, 2), before, 'api and web keep their slots');
  t.match(after[2], new RegExp(`^web 127\\.0\\.0\\.1:${c.port} \\d+$`), 'c joins web in a slot of its own');

  // An invalid file: every error named (file, route, what is wrong), the running table kept.
  sluice.writeConfig({
    pools,
    routes: [
      { name: 'x', match: { path_regex: '(a+)+' }, pool: 'api' },
      { name: 'x', match: {}, pool: 'nowhere' },
    ],
  });
  const refused = await sluice.reload();
  t.equal(refused.msg, 'reload refused: the new configuration is invalid; the running one is kept');
  const errors = (refused.errors as string[]).join('\n');
  t.match(errors, sluice.configFile, 'names the file');
  t.match(errors, /path_regex/, 'names the bad regex');
  t.match(errors, /nowhere/, 'names the unknown pool');
  t.match(errors, /x/, 'names the route');
  t.same(await routeNames(), ['v2', 'rest'], 'the running table is kept');

  // A file that does not parse at all is refused the same way.
  sluice.writeConfig('pools: [unclosed\n');
  t.match(await sluice.reload(), { msg: /^reload refused/ });
  t.same(await routeNames(), ['v2', 'rest']);
  t.equal((await request(`${sluice.url}/v2/x`)).status, 200, 'and it still serves');
});

t.test('SIGHUP from one route table to another under keep-alive load: zero failures', async (t) => {
  await ensureBuilt();
  const named = async (name: string): Promise<HttpBackend> => startBackend(t, (_req, res) => res.end(name));
  const [blue1, blue2, green1, green2] = [await named('blue1'), await named('blue2'), await named('green1'), await named('green2')];
  const health = { path: '/', interval_ms: 100, timeout_ms: 1000, healthy_threshold: 1, unhealthy_threshold: 2 };
  const blueTable = {
    pools: { blue: { upstreams: [blue1.url, blue2.url], health } },
    routes: [{ name: 'to-blue', match: { path_prefix: '/' }, pool: 'blue' }],
  };
  const sluice = await startSluice(t, { upstreams: [], workers: 2, env: { SLUICE_HEALTH_CHECK: 'on' }, config: blueTable });
  const load = await keepAliveLoad(t, sluice.port, 6, '/app', 'shop.example.com');
  await load.answeredSince(0, 60);
  t.ok(load.outcomes.every((o) => o.backend.startsWith('blue')), 'blue serves before the reload');

  // A new pool (checked before it gets traffic) and a new table that sends everything to it.
  sluice.writeConfig({
    pools: { green: { upstreams: [green1.url, green2.url], health } },
    routes: [
      { name: 'shop', match: { host: '*.example.com', path_prefix: '/app' }, pool: 'green' },
      { name: 'rest', match: {}, respond: { status: 404 } },
    ],
  });
  const reloaded = await sluice.reload();
  const afterReload = load.started;
  t.match(reloaded, { msg: 'configuration reloaded', changed: ['pools.green', 'pools.blue', 'routes'] });
  await load.answeredSince(afterReload, 60);
  // The new pool's backends join as their first health checks pass, one possibly a check interval
  // after the other: give the load time to see both (bounded) rather than judging the first 60.
  const sawBoth = () => {
    const seen = new Set(load.outcomes.filter((o) => o.seq >= afterReload).map((o) => o.backend));
    return seen.has('green1') && seen.has('green2');
  };
  for (let n = 120; n <= 1200 && !sawBoth(); n += 60) await load.answeredSince(afterReload, n);
  await load.stop();

  t.same(load.broken, [], 'no client connection broke');
  t.equal(load.clients.filter((c) => c.closed).length, 0, 'all 6 client connections are still open');
  const failed = load.outcomes.filter((o) => o.status !== 200);
  t.equal(failed.length, 0, `no failed requests out of ${load.outcomes.length} (${JSON.stringify(failed.slice(0, 3))})`);
  const late = load.outcomes.filter((o) => o.seq >= afterReload);
  t.ok(late.every((o) => o.backend.startsWith('green')), 'requests started after the reload went only to green');
  t.ok(late.some((o) => o.backend === 'green1') && late.some((o) => o.backend === 'green2'), 'both green backends serve');
});
