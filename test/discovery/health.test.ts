// Health checks and outlier detection apply to discovered backends as to static ones: a
// registered backend whose check fails never gets traffic, and one that answers 5xx to real
// requests is ejected by outlier detection.

import t from 'tap';
import { startBackend } from '../helpers/backends.js';
import { until } from '../helpers/wait.js';
import { request, startWithAdmin } from '../admin/admin-helpers.js';

t.test('discovered backends are health-checked and ejected like static ones', async (t) => {
  const good = await startBackend(t, (_req, res) => res.end('good'));
  const failing = await startBackend(t, (req, res) => {
    res.statusCode = req.url === '/healthz' ? 503 : 200;
    res.end('failing');
  });
  const erroring = await startBackend(t, (req, res) => {
    res.statusCode = req.url === '/healthz' ? 200 : 500;
    res.end('erroring');
  });
  const { sluice, admin } = await startWithAdmin(t, {
    upstreams: [],
    env: { SLUICE_HEALTH_CHECK: 'on' },
    config: {
      pools: {
        api: {
          upstreams: [good.url],
          registry: true,
          balancer: 'round-robin',
          retries: 0,
          // Panic mode would spread traffic over the unhealthy and ejected ones too: not what this is about.
          panic_threshold_percent: 0,
          health: { path: '/healthz', interval_ms: 200, timeout_ms: 500 },
          outlier: { consecutive_5xx: 3, max_ejection_percent: 50 },
        },
      },
      routes: [{ match: { path_prefix: '/' }, pool: 'api' }],
    },
  });
  const api = (method: string, path: string, body?: unknown) =>
    request(`${admin}${path}`, { method, headers: { 'x-sluice-admin': '1' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const state = async (url: string): Promise<{ state: string; check: { state: string } | null } | undefined> => {
    const b = JSON.parse((await api('GET', '/api/backends')).body);
    return b.backends.find((x: { url: string }) => x.url === url);
  };

  t.equal((await api('PUT', '/api/registry/api', { url: failing.url })).status, 200);
  await until('the failing backend has been checked', () => failing.requests.length > 0);
  for (let i = 0; i < 10; i++) t.equal((await request(sluice.url)).body, 'good');
  t.equal(failing.requests.filter((r) => r.url !== '/healthz').length, 0, 'a discovered backend failing its check gets no request');

  t.equal((await api('PUT', '/api/registry/api', { url: erroring.url })).status, 200);
  await until('the erroring backend passed its first check', async () => (await state(erroring.url))?.check?.state === 'healthy');
  await until('outlier detection ejects it', async () => {
    await request(sluice.url);
    return (await state(erroring.url))?.state === 'ejected';
  });
  const served = erroring.requests.filter((r) => r.url !== '/healthz').length;
  const answers: { body: string; sentAt: number }[] = [];
  for (let i = 0; i < 10; i++) {
    const sentAt = Date.now();
    answers.push({ body: (await request(sluice.url)).body, sentAt });
  }
  // Its /healthz passes, and a passing HTTP check ends a 5xx ejection (active-checker.ts): on a
  // loaded machine the next check (200 ms) can land inside these ten requests. Only requests sent
  // after that moment may reach it.
  const ended = sluice.logs().find((l) => l.msg === 'ejection ended by a passing health check' && l.url === erroring.url);
  const endedAt = typeof ended?.time === 'number' ? ended.time : Infinity;
  t.same(
    answers.filter((a) => a.sentAt < endedAt).map((a) => a.body),
    answers.filter((a) => a.sentAt < endedAt).map(() => 'good'),
    'ejected: traffic goes elsewhere',
  );
  if (ended === undefined) t.equal(erroring.requests.filter((r) => r.url !== '/healthz').length, served, 'no request reached it while ejected');
});
