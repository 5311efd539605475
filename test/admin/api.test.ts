// The admin JSON API against the real proxy: drain, enable and weight reach every worker at once
// through the shared table; status and backend views; the HTTP edges (404, 405, 400, 413).

import t from 'tap';
import { startBackend } from '../helpers/backends.js';
import { adminPost, request, startWithAdmin } from './admin-helpers.js';

interface BackendView {
  slot: number;
  id: string;
  state: string;
  admin: string;
  weight: number;
  available: boolean;
  requests: number;
  responses: Record<string, number>;
  latency: { count: number; p50Ms: number; p99Ms: number };
}

async function backends(admin: string): Promise<BackendView[]> {
  const r = await request(`${admin}/api/backends`);
  if (r.status !== 200) throw new Error(`/api/backends: ${r.status} ${r.body}`);
  return (JSON.parse(r.body) as { backends: BackendView[] }).backends;
}

t.test('drain takes a backend out of rotation for every worker; enable brings it back', async (t) => {
  const a = await startBackend(t);
  const b = await startBackend(t);
  const c = await startBackend(t);
  const { sluice, admin } = await startWithAdmin(t, { upstreams: [a.url, b.url, c.url], workers: 2 });
  const idB = `127.0.0.1:${b.port}`;

  const drained = await adminPost(admin, `/api/backends/${idB}/drain`);
  t.equal(drained.status, 200, drained.body);
  const view = JSON.parse(drained.body) as BackendView;
  t.match(view, { id: idB, state: 'draining', admin: 'draining', available: false });

  // Each request on its own connection: the kernel spreads them over both workers.
  const N = 60;
  for (let i = 0; i < N; i++) t.equal((await request(`${sluice.url}/r${i}`)).status, 200);
  t.equal(b.requests.length, 0, 'no request reached the drained backend');
  t.equal(a.requests.length + c.requests.length, N, 'the others took all of them');

  const enabled = await adminPost(admin, '/api/backends/1/enable'); // by slot: b is slot 1
  t.equal(enabled.status, 200);
  t.match(JSON.parse(enabled.body), { id: idB, state: 'up', available: true });
  for (let i = 0; i < N; i++) await request(`${sluice.url}/again${i}`);
  t.ok(b.requests.length > 0, `enabled backend takes traffic again (${b.requests.length} of ${N})`);

  const logs = sluice.logs().filter((l) => l.msg === 'admin change');
  t.match(logs, [{ backend: idB, action: 'drain' }, { backend: idB, action: 'enable' }], 'changes are logged');
});

t.test('weight changes apply to the balancer at once', async (t) => {
  const a = await startBackend(t);
  const b = await startBackend(t);
  const { sluice, admin } = await startWithAdmin(t, {
    upstreams: [a.url, b.url],
    workers: 2,
    env: { SLUICE_BALANCER: 'weighted-random' },
  });
  const idA = `127.0.0.1:${a.port}`;
  const zero = await adminPost(admin, `/api/backends/${idA}/weight`, { weight: 0 });
  t.equal(zero.status, 200, zero.body);
  t.match(JSON.parse(zero.body), { weight: 0, state: 'off', available: false });
  for (let i = 0; i < 30; i++) await request(`${sluice.url}/`);
  t.equal(a.requests.length, 0, 'weight 0: no traffic');
  t.equal(b.requests.length, 30);

  const heavy = await adminPost(admin, `/api/backends/${idA}/weight`, { weight: 9 });
  t.match(JSON.parse(heavy.body), { weight: 9, state: 'up' });
  const before = a.requests.length;
  const N = 200;
  for (let i = 0; i < N; i++) await request(`${sluice.url}/`);
  const share = (a.requests.length - before) / N;
  // 9:1 → 90% expected; 200 draws put a 4-sigma band at about ±8.5%.
  t.ok(share > 0.8 && share <= 1, `backend with weight 9 of 10 took ${(share * 100).toFixed(1)}%`);

  const views = await backends(admin);
  t.same(views.map((v) => v.weight), [9, 1]);
});

t.test('status and backend views', async (t) => {
  const a = await startBackend(t);
  const { sluice, admin } = await startWithAdmin(t, { upstreams: [a.url], workers: 2 });
  for (let i = 0; i < 5; i++) await request(`${sluice.url}/`);

  const status = await request(`${admin}/api/status`);
  t.equal(status.status, 200);
  t.match(status.headers['content-type'], /^application\/json/);
  const s = JSON.parse(status.body) as Record<string, any>;
  t.match(s, {
    version: '0.1.0',
    workers: { configured: 2, running: 2, restarts: 0 },
    backends: { total: 1, available: 1 },
    balancer: 'peak-ewma',
  });
  t.ok(s.uptimeSeconds >= 0);
  t.equal(s.config.SLUICE_ADMIN_TOKEN, '(unset)');
  t.same(s.config.SLUICE_WORKERS, 2);

  const [view] = await backends(admin);
  t.match(view, { slot: 0, id: `127.0.0.1:${a.port}`, state: 'up', requests: 5, responses: { '2xx': 5 } });

  const one = await request(`${admin}/api/backends/127.0.0.1:${a.port}`);
  t.equal(one.status, 200);
  t.match(JSON.parse(one.body), { slot: 0, requests: 5 });

  const metrics = await request(`${admin}/metrics`);
  t.equal(metrics.status, 200);
  t.match(metrics.headers['content-type'], /^text\/plain; version=0\.0\.4/);
});

t.test('HTTP edges: 404, 405, 400, 413', async (t) => {
  const a = await startBackend(t);
  const { sluice, admin } = await startWithAdmin(t, { upstreams: [a.url] });
  t.equal((await request(`${admin}/nope`)).status, 404);
  t.equal((await request(`${admin}/api/backends/9.9.9.9:1`)).status, 404, 'unknown backend');
  t.equal((await request(`${admin}/api/backends/7`)).status, 404, 'unknown slot');
  t.equal((await adminPost(admin, `/api/backends/0/explode`)).status, 404, 'unknown action');

  const wrongMethod = await request(`${admin}/metrics`, { method: 'DELETE' });
  t.equal(wrongMethod.status, 405);
  t.equal(wrongMethod.headers.allow, 'GET, HEAD');
  const getAction = await request(`${admin}/api/backends/0/drain`);
  t.equal(getAction.status, 405, 'actions are POST only');
  t.equal(getAction.headers.allow, 'POST');

  t.equal((await adminPost(admin, '/api/backends/0/weight', { weight: -1 })).status, 400);
  t.equal((await adminPost(admin, '/api/backends/0/weight', { weight: 1001 })).status, 400);
  t.equal((await adminPost(admin, '/api/backends/0/weight', { weight: '5' })).status, 400);
  t.equal((await adminPost(admin, '/api/backends/0/weight', { other: 1 })).status, 400);
  const notJson = await request(`${admin}/api/backends/0/weight`, { method: 'POST', headers: { 'x-sluice-admin': '1' }, body: 'weight=5' });
  t.equal(notJson.status, 400);

  const big = await adminPost(admin, '/api/backends/0/weight', { weight: 1, pad: 'x'.repeat(5000) });
  t.equal(big.status, 413);

  const head = await request(`${admin}/api/status`, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.body, '');

  // Nothing of this reached the proxy's backends or changed the table.
  t.equal(a.requests.length, 0);
  t.equal((await request(`${sluice.url}/`)).status, 200);
});
