// Demo mode through the built CLI: with no upstream in any pool, Sluice starts three echo backends
// on loopback, says so (DEMO MODE), and makes them the pool "default" that the catch-all route
// sends to: requests are spread over demo-1..3 and the admin API shows them as that pool.

import t from 'tap';
import { request, startWithAdmin } from '../admin/admin-helpers.js';

t.test('no upstreams: the demo backends are the pool default', async (t) => {
  const { sluice, admin } = await startWithAdmin(t, { upstreams: [] });
  const warned = sluice.logs().find((l) => l.msg.startsWith('DEMO MODE'));
  t.ok(warned, 'DEMO MODE is logged');
  t.equal((warned!.upstreams as string[]).length, 3);

  const seen = new Set<string>();
  for (let i = 0; i < 12; i++) {
    const r = await request(`${sluice.url}/hello`);
    t.equal(r.status, 200);
    seen.add(String(r.headers['x-demo-backend']));
  }
  t.same([...seen].sort(), ['demo-1', 'demo-2', 'demo-3'], 'every demo backend answers');

  const pools = JSON.parse((await request(`${admin}/api/pools`)).body) as { pools: { name: string; members: { url: string }[] }[] };
  t.same(pools.pools.map((p) => p.name), ['default']);
  t.same(pools.pools[0]!.members.map((m) => m.url), warned!.upstreams, 'the pool default holds them');
  const routes = JSON.parse((await request(`${admin}/api/routes`)).body) as { routes: { name: string; action: string }[] };
  t.same(routes.routes.map((r) => [r.name, r.action]), [['route-0', 'pool default']]);
});
