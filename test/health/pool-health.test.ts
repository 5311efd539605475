// Active health checks per pool, through the real proxy started from a config file: each pool's
// backends are probed with that pool's path, expected statuses and on/off switch, and one address
// listed in two pools is two backends whose checks (and verdicts) are independent.

import t from 'tap';
import { startBackend } from '../helpers/backends.js';
import { request, startWithAdmin } from '../admin/admin-helpers.js';
import { until } from '../helpers/wait.js';

interface Member {
  slot: number;
  id: string;
  pool: string;
  state: string;
  check: { state: string } | null;
}

t.test('each pool checks its backends on its own terms', async (t) => {
  // `shared` passes /ok and fails /broken: pool "good" checks /ok, pool "bad" checks /broken.
  const shared = await startBackend(t, (req, res) => {
    res.writeHead(req.url === '/broken' ? 503 : 200);
    res.end(req.url);
  });
  const quiet = await startBackend(t);
  const fast = { interval_ms: 50, timeout_ms: 500, healthy_threshold: 1, unhealthy_threshold: 1 };
  const { admin } = await startWithAdmin(t, {
    upstreams: [],
    // The environment's default is on (the helper turns it off): pool "unchecked" turns it off again.
    env: { SLUICE_HEALTH_CHECK: 'on' },
    config: {
      pools: {
        good: { upstreams: [shared.url], health: { path: '/ok', expect: '200', ...fast } },
        bad: { upstreams: [shared.url], health: { path: '/broken', ...fast } },
        unchecked: { upstreams: [quiet.url], health: { enabled: false } },
      },
      routes: [{ match: {}, pool: 'good' }],
    },
  });

  const members = async (): Promise<Member[]> => {
    const r = await request(`${admin}/api/backends`);
    return (JSON.parse(r.body) as { backends: Member[] }).backends;
  };
  await until('both checks of the shared address to have a verdict', async () => {
    const list = await members();
    return list.filter((m) => m.check !== null && (m.check.state === 'healthy' || m.check.state === 'unhealthy')).length === 2;
  });
  const list = await members();
  const byPool = new Map(list.map((m) => [m.pool, m]));
  t.equal(list.length, 3, 'three backends: the shared address once per pool');
  t.not(byPool.get('good')!.slot, byPool.get('bad')!.slot, 'separate slots for the same address');
  t.match(byPool.get('good'), { state: 'up', check: { state: 'healthy' } }, 'pool good: /ok passes');
  t.match(byPool.get('bad'), { state: 'down', check: { state: 'unhealthy' } }, 'pool bad: /broken fails, on the same address');
  t.match(byPool.get('unchecked'), { state: 'up', check: { state: 'unchecked' } }, 'pool unchecked: never probed');

  const paths = new Set(shared.requests.map((r) => r.url));
  t.same([...paths].sort(), ['/broken', '/ok'], 'the shared address is probed on both pools\' paths');
  t.equal(quiet.requests.length, 0, 'no probe reached the backend of the pool with checks off');

  const pools = JSON.parse((await request(`${admin}/api/pools`)).body) as { pools: { name: string; settings: { health: { mode: string; path: string; interval_ms: number } } }[] };
  t.same(
    pools.pools.map((p) => [p.name, p.settings.health.mode, p.settings.health.path]),
    [
      ['good', 'http', '/ok'],
      ['bad', 'http', '/broken'],
      ['unchecked', 'off', ''],
    ],
  );
  t.equal(pools.pools[0]!.settings.health.interval_ms, 50);

  // The shared address names two backends: ?pool= picks one.
  const id = `127.0.0.1:${shared.port}`;
  t.match(JSON.parse((await request(`${admin}/api/backends/${id}?pool=bad`)).body), { pool: 'bad', state: 'down' });
  t.match(JSON.parse((await request(`${admin}/api/backends/${id}?pool=good`)).body), { pool: 'good', state: 'up' });
  t.equal((await request(`${admin}/api/backends/${id}?pool=unchecked`)).status, 404, 'not a backend of that pool');
});
