// Pools and routes through the admin listener of the real proxy, started from a config file:
// /api/routes (file order, matchers under their file keys, action summaries, hit counters),
// /api/pools (settings, the routes that use each, live backends), and /metrics (a `pool` label on
// every per-backend series, one route counter per route name and nothing keyed by a raw path).

import t from 'tap';
import { startBackend } from '../helpers/backends.js';
import { request, sample, scrape, startWithAdmin } from './admin-helpers.js';
import { until } from '../helpers/wait.js';

interface RouteView {
  index: number;
  name: string;
  match: Record<string, unknown>;
  action: string;
  pools: string[];
  hits: number;
}

interface PoolView {
  name: string;
  balancer: string;
  routes: string[];
  settings: { health: { mode: string; path: string }; retries: number };
  backends: { total: number; available: number };
  members: { id: string; pool: string; state: string; inFlight: number; check: unknown }[];
}

async function get<T>(url: string): Promise<T> {
  const r = await request(url);
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${r.body}`);
  return JSON.parse(r.body) as T;
}

t.test('/api/routes, /api/pools and the pool and route labels of /metrics', async (t) => {
  const [a, b, c] = [await startBackend(t), await startBackend(t), await startBackend(t)];
  const { sluice, admin } = await startWithAdmin(t, {
    upstreams: [],
    workers: 1,
    config: {
      pools: {
        api: { upstreams: [a.url, b.url], balancer: 'round-robin', retries: 0 },
        web: { upstreams: [c.url, a.url] },
      },
      routes: [
        { name: 'api', match: { host: 'api.example.com', path_prefix: '/v1/' }, pool: 'api', strip_prefix: '/v1' },
        { name: 'robots', match: { path: '/robots.txt' }, respond: { status: 200, body: 'User-agent: *\n' } },
        { name: 'old', match: { path: '/old' }, redirect: { status: 308, location: '/new' } },
        { name: 'canary', match: { headers: { 'x-canary': '1' } }, split: [{ pool: 'web', weight: 90 }, { pool: 'api', weight: 10 }], split_key: 'cookie:session' },
        { match: {}, pool: 'web' },
      ],
    },
  });

  const { routes, file } = await get<{ routes: RouteView[]; file: string }>(`${admin}/api/routes`);
  t.equal(file, sluice.configFile, 'names the file the table came from');
  t.same(
    routes.map((r) => [r.index, r.name, r.action]),
    [
      [0, 'api', 'pool api'],
      [1, 'robots', 'respond 200'],
      [2, 'old', 'redirect 308 /new'],
      [3, 'canary', 'split web 90 / api 10 (sticky by cookie:session)'],
      [4, 'route-4', 'pool web'],
    ],
    'file order, names (default route-<index>), action summaries',
  );
  t.same(routes[0]!.match, { host: 'api.example.com', path_prefix: '/v1/' }, 'matchers under their file keys');
  t.same(routes[3]!.match, { headers: { 'x-canary': '1' } });
  t.same(routes[4]!.match, {});
  t.same(routes[3]!.pools, ['web', 'api']);
  t.ok(routes.every((r) => r.hits === 0), 'no hits before any request');

  const { pools } = await get<{ pools: PoolView[] }>(`${admin}/api/pools`);
  t.same(pools.map((p) => p.name), ['api', 'web']);
  t.match(pools[0], { balancer: 'round-robin', routes: ['api', 'canary'], settings: { retries: 0, health: { mode: 'off' } }, backends: { total: 2 } });
  t.match(pools[1], { balancer: 'peak-ewma', routes: ['canary', 'route-4'], backends: { total: 2 } });
  const idA = `127.0.0.1:${a.port}`;
  t.same(pools[0]!.members.map((m) => m.id), [idA, `127.0.0.1:${b.port}`]);
  t.same(pools[1]!.members.map((m) => m.id), [`127.0.0.1:${c.port}`, idA], 'a is a backend of both pools');
  t.ok(pools.every((p) => p.members.every((m) => m.pool === p.name && m.inFlight === 0 && m.state === 'up')));

  const m = await scrape(admin);
  for (const [pool, id] of [['api', idA], ['web', idA], ['web', `127.0.0.1:${c.port}`]] as const) {
    t.equal(sample(m, `sluice_backend_in_flight{backend="${id}",pool="${pool}"}`), 0, `${pool} ${id}: its own series`);
    t.equal(sample(m, `sluice_requests_total{backend="${id}",pool="${pool}",code_class="2xx"}`), 0);
  }
  for (const r of routes) t.equal(sample(m, `sluice_route_requests_total{route="${r.name}"}`), 0, `route counter ${r.name}`);
  const routeSeries = [...m.keys()].filter((k) => k.startsWith('sluice_route_requests_total'));
  t.equal(routeSeries.length, routes.length, 'one series per route, whatever paths are requested');
  t.ok(sluice.logs().some((l) => l.msg === 'routes' && l.routes === 5), 'the route table is logged at start');
  t.same(
    sluice.logs().filter((l) => l.msg === 'pool').map((l) => l.pool),
    ['api', 'web'],
    'each pool is logged at start',
  );
});

t.test('route hits are counted per route and reach /api/routes and /metrics', async (t) => {
  const [a, c] = [await startBackend(t), await startBackend(t)];
  const { sluice, admin } = await startWithAdmin(t, {
    upstreams: [],
    config: {
      pools: { api: { upstreams: [a.url] }, web: { upstreams: [c.url] } },
      routes: [
        { name: 'api', match: { path_prefix: '/api' }, pool: 'api' },
        { name: 'robots', match: { path: '/robots.txt' }, respond: { status: 200, body: 'ok' } },
        { name: 'rest', match: {}, pool: 'web' },
      ],
    },
  });
  for (let i = 0; i < 3; i++) t.equal((await request(`${sluice.url}/api/x${i}`)).status, 200);
  for (let i = 0; i < 2; i++) t.equal((await request(`${sluice.url}/robots.txt`)).status, 200);
  t.equal((await request(`${sluice.url}/other`)).status, 200);
  await until('hits to reach the table', async () => {
    const { routes } = await get<{ routes: RouteView[] }>(`${admin}/api/routes`);
    return routes.map((r) => r.hits).join() === '3,2,1';
  });
  const m = await scrape(admin);
  t.equal(sample(m, 'sluice_route_requests_total{route="api"}'), 3);
  t.equal(sample(m, 'sluice_route_requests_total{route="robots"}'), 2);
  t.equal(sample(m, 'sluice_route_requests_total{route="rest"}'), 1);
  t.equal(a.requests.length, 3, 'the api pool served /api');
  t.equal(c.requests.length, 1, 'the respond route never touched a backend');
});
