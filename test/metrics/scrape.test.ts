// /metrics after known traffic through the real proxy (built CLI, real loopback backends): every
// counter must match what was sent, exactly.

import t from 'tap';
import { refusedPort, startBackend, type Handler } from '../helpers/backends.js';
import { request, sample, scrape, startWithAdmin } from '../admin/admin-helpers.js';

/** Answers /status/NNN with NNN; anything else 200. */
const byPath: Handler = (req, res) => {
  req.resume();
  req.on('end', () => {
    const m = /^\/status\/(\d{3})$/.exec(req.url ?? '');
    const status = m ? Number(m[1]) : 200;
    res.writeHead(status, { 'content-length': '2' });
    res.end('ok');
  });
};

t.test('request counts by backend and status class are exact', async (t) => {
  const a = await startBackend(t, byPath);
  const b = await startBackend(t, byPath);
  const { sluice, admin } = await startWithAdmin(t, {
    upstreams: [a.url, b.url],
    workers: 2,
    env: { SLUICE_BALANCER: 'round-robin' },
  });
  const plan: [string, number][] = [
    ['/ok', 10],
    ['/status/204', 3],
    ['/status/302', 2],
    ['/status/404', 4],
    ['/status/503', 3],
  ];
  for (const [path, n] of plan) {
    for (let i = 0; i < n; i++) {
      const r = await request(`${sluice.url}${path}`);
      t.equal(r.status, path === '/ok' ? 200 : Number(path.slice(-3)), `${path} answered`);
    }
  }
  const m = await scrape(admin);
  const seen = (backend: typeof a, cls: string): number =>
    backend.requests.filter((r) => {
      const s = /^\/status\/(\d)/.exec(r.url);
      return (s ? `${s[1]}xx` : '2xx') === cls;
    }).length;
  const total: Record<string, number> = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
  for (const backend of [a, b]) {
    const id = `127.0.0.1:${backend.port}`;
    for (const cls of Object.keys(total)) {
      const v = sample(m, `sluice_requests_total{backend="${id}",pool="default",code_class="${cls}"}`);
      t.equal(v, seen(backend, cls), `${id} ${cls} matches what that backend answered`);
      total[cls]! += v;
    }
    for (const kind of ['connect', 'timeout', 'reset', 'protocol']) {
      t.equal(sample(m, `sluice_upstream_errors_total{backend="${id}",pool="default",kind="${kind}"}`), 0);
    }
    t.equal(sample(m, `sluice_backend_in_flight{backend="${id}",pool="default"}`), 0, 'nothing in flight');
    t.equal(sample(m, `sluice_backend_healthy{backend="${id}",pool="default"}`), 1);
    t.equal(sample(m, `sluice_backend_available{backend="${id}",pool="default"}`), 1);
    t.equal(sample(m, `sluice_backend_weight{backend="${id}",pool="default"}`), 1);
    t.equal(sample(m, `sluice_ejections_total{backend="${id}",pool="default"}`), 0);
    t.ok(sample(m, `sluice_backend_ewma_seconds{backend="${id}",pool="default"}`) > 0, 'EWMA has samples');
  }
  t.same(total, { '1xx': 0, '2xx': 13, '3xx': 2, '4xx': 4, '5xx': 3 }, 'totals by class');
  t.equal(a.requests.length + b.requests.length, 22, 'backends saw every request once');
  t.equal(sample(m, 'sluice_workers'), 2);
  t.equal(sample(m, 'sluice_workers_configured'), 2);
  t.equal(sample(m, 'sluice_worker_restarts_total'), 0);
  t.equal(sample(m, 'sluice_build_info{version="0.1.0"}'), 1);

  // Latency histograms: one sample per finished request, merged over both workers.
  t.test('latency histograms count every request', async (t) => {
    for (const backend of [a, b]) {
      const id = `127.0.0.1:${backend.port}`;
      const n = backend.requests.length;
      for (const name of ['sluice_request_duration_seconds', 'sluice_upstream_duration_seconds']) {
        t.equal(sample(m, `${name}_count{backend="${id}",pool="default"}`), n, `${name} count for ${id}`);
        t.equal(sample(m, `${name}_bucket{backend="${id}",pool="default",le="+Inf"}`), n, '+Inf bucket is the count');
        t.ok(sample(m, `${name}_sum{backend="${id}",pool="default"}`) > 0, 'sum of durations');
        let last = 0;
        for (const le of ['0.0005', '0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10']) {
          const v = sample(m, `${name}_bucket{backend="${id}",pool="default",le="${le}"}`);
          t.ok(v >= last, `buckets are cumulative at le=${le}`);
          last = v;
        }
        t.equal(last, n, 'every loopback request took under 10 s');
      }
    }
  });
});

t.test('upstream connect errors are counted by kind and as 5xx', async (t) => {
  const port = await refusedPort();
  const { sluice, admin } = await startWithAdmin(t, {
    upstreams: [`http://127.0.0.1:${port}`],
    env: { SLUICE_RETRIES: '0' },
  });
  for (let i = 0; i < 3; i++) {
    const r = await request(`${sluice.url}/`);
    t.equal(r.status, 502);
    t.equal(r.headers['x-sluice-error'], 'connect');
  }
  const m = await scrape(admin);
  const id = `127.0.0.1:${port}`;
  t.equal(sample(m, `sluice_upstream_errors_total{backend="${id}",pool="default",kind="connect"}`), 3);
  t.equal(sample(m, `sluice_requests_total{backend="${id}",pool="default",code_class="5xx"}`), 3);
  t.equal(sample(m, `sluice_retries_total{backend="${id}",pool="default"}`), 0);
});

t.test('a restarted worker is counted, and counters survive it', async (t) => {
  const a = await startBackend(t);
  const { sluice, admin } = await startWithAdmin(t, { upstreams: [a.url], workers: 2, testHooks: true });
  for (let i = 0; i < 5; i++) t.equal((await request(`${sluice.url}/`)).status, 200);
  const id = `127.0.0.1:${a.port}`;
  const before = await scrape(admin);
  sluice.child.kill('SIGUSR2'); // test hook: worker 0 throws
  await sluice.waitForLog((l) => l.msg === 'worker restarted', 10_000);
  const after = await scrape(admin);
  t.equal(sample(after, 'sluice_worker_restarts_total'), 1);
  t.equal(sample(after, 'sluice_workers'), 2, 'replaced');
  t.equal(sample(after, `sluice_requests_total{backend="${id}",pool="default",code_class="2xx"}`), 5, 'table counters survive');
  const name = `sluice_request_duration_seconds_count{backend="${id}",pool="default"}`;
  t.ok(sample(after, name) >= sample(before, name), 'merged histogram count never goes backwards');
});
