// The exposition text from a table filled by hand: names, types, labels, escaping, histogram
// series, and the backend states derived from the table.

import t from 'tap';
import { collectBackendStats } from '../../src/metrics/backend-stats.js';
import { LatencyAggregator } from '../../src/metrics/latency-merge.js';
import { LatencyRecorder } from '../../src/metrics/latency.js';
import { escapeLabelValue, renderMetrics } from '../../src/metrics/prometheus.js';
import { Admin, C, Health, WEIGHT_SCALE } from '../../src/state/layout.js';
import { SharedTable } from '../../src/state/table.js';
import type { Backend } from '../../src/model/upstream.js';

function backend(slot: number, host: string, port: number, weight = 1): Backend {
  return { slot, id: `${host}:${port}`, weight, upstream: { url: `http://${host}:${port}`, protocol: 'http:', host, port, weight }, pool: 'default', poolIndex: 0 };
}

const PROC = {
  version: '9.9.9',
  startTimeSeconds: 1700000000,
  workersConfigured: 4,
  workersRunning: 3,
  workerRestarts: 2,
};

t.test('label values are escaped', async (t) => {
  t.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  t.equal(escapeLabelValue('10.0.0.1:80'), '10.0.0.1:80');
});

t.test('counters and gauges come from the table', async (t) => {
  const table = new SharedTable();
  const backends = [backend(0, '10.0.0.1', 80), backend(1, '10.0.0.2', 8080, 2)];
  for (const b of backends) table.set(C.WEIGHT, b.slot, b.weight * WEIGHT_SCALE);
  table.add(C.RESP_2XX, 0, 40);
  table.add(C.RESP_5XX, 0, 2);
  table.add(C.RESP_4XX, 1, 7);
  table.add(C.ERR_CONNECT, 1, 3);
  table.add(C.ERR_TIMEOUT, 1, 1);
  table.add(C.RETRIES, 1, 3);
  table.add(C.EJECTIONS, 1, 1);
  table.add(C.IN_FLIGHT, 0, 5);
  table.add(C.OPEN_CONNS, 0, 6);
  table.set(C.HEALTH, 1, Health.UNHEALTHY);
  table.set(C.EWMA_US, 0, 2500);
  // Stamped ahead of the clock so no decay applies, however many milliseconds this test takes.
  table.set(C.EWMA_STAMP, 0, table.now() + 60_000);

  const stats = collectBackendStats(table, backends, new Map(), 1e9);
  t.match(stats[0], { state: 'up', available: true, health: 'unknown', ewmaMs: 2.5 });
  t.match(stats[1], { state: 'down', available: false, health: 'unhealthy', weight: 2, ewmaMs: null });
  const text = renderMetrics(stats, PROC);

  const lines = text.split('\n');
  t.ok(text.endsWith('\n'));
  for (const want of [
    'sluice_build_info{version="9.9.9"} 1',
    'sluice_workers 3',
    'sluice_workers_configured 4',
    'sluice_worker_restarts_total 2',
    'sluice_requests_total{backend="10.0.0.1:80",pool="default",code_class="2xx"} 40',
    'sluice_requests_total{backend="10.0.0.1:80",pool="default",code_class="5xx"} 2',
    'sluice_requests_total{backend="10.0.0.2:8080",pool="default",code_class="4xx"} 7',
    'sluice_requests_total{backend="10.0.0.2:8080",pool="default",code_class="1xx"} 0',
    'sluice_upstream_errors_total{backend="10.0.0.2:8080",pool="default",kind="connect"} 3',
    'sluice_upstream_errors_total{backend="10.0.0.2:8080",pool="default",kind="timeout"} 1',
    'sluice_upstream_errors_total{backend="10.0.0.2:8080",pool="default",kind="reset"} 0',
    'sluice_retries_total{backend="10.0.0.2:8080",pool="default"} 3',
    'sluice_ejections_total{backend="10.0.0.2:8080",pool="default"} 1',
    'sluice_backend_in_flight{backend="10.0.0.1:80",pool="default"} 5',
    'sluice_backend_open_connections{backend="10.0.0.1:80",pool="default"} 6',
    'sluice_backend_healthy{backend="10.0.0.1:80",pool="default"} 1',
    'sluice_backend_healthy{backend="10.0.0.2:8080",pool="default"} 0',
    'sluice_backend_available{backend="10.0.0.2:8080",pool="default"} 0',
    'sluice_backend_weight{backend="10.0.0.2:8080",pool="default"} 2',
    'sluice_backend_ewma_seconds{backend="10.0.0.1:80",pool="default"} 0.0025',
    'sluice_backend_ewma_seconds{backend="10.0.0.2:8080",pool="default"} 0',
    'sluice_request_duration_seconds_count{backend="10.0.0.1:80",pool="default"} 0',
    'sluice_request_duration_seconds_bucket{backend="10.0.0.1:80",pool="default",le="+Inf"} 0',
  ]) {
    t.ok(lines.includes(want), want);
  }

  // Every family has HELP and TYPE once, before its samples, and no sample name is orphaned.
  const types = new Map<string, string>();
  for (const line of lines) {
    const m = /^# TYPE (\S+) (counter|gauge|histogram)$/.exec(line);
    if (m) {
      t.notOk(types.has(m[1]!), `${m[1]} declared once`);
      types.set(m[1]!, m[2]!);
    }
  }
  for (const line of lines) {
    if (line === '' || line.startsWith('#')) continue;
    const name = /^[a-z_:][a-z0-9_:]*/.exec(line)![0];
    const family = name.replace(/_(bucket|sum|count)$/, '');
    t.ok(types.has(name) || types.get(family) === 'histogram', `${name} has a TYPE`);
    t.match(line, /^[a-z_:][a-z0-9_:]*(\{([a-z_]+="([^"\\\n]|\\["\\n])*",?)*\})? \S+$/, 'sample line syntax');
  }
  for (const [name, type] of types) if (type === 'counter') t.match(name, /_total$/, `${name} ends in _total`);
});

t.test('operator states', async (t) => {
  const table = new SharedTable();
  const bs = [0, 1, 2, 3].map((i) => backend(i, '10.0.0.9', 1000 + i));
  for (const b of bs) table.set(C.WEIGHT, b.slot, WEIGHT_SCALE);
  table.set(C.ADMIN, 0, Admin.DRAINING);
  table.set(C.ADMIN, 1, Admin.DISABLED);
  table.set(C.WEIGHT, 2, 0);
  table.set(C.EJECTED_UNTIL, 3, table.now() + 60_000);
  table.add(C.EJECTIONS, 3, 1);
  const stats = collectBackendStats(table, bs, new Map(), 10_000);
  t.same(stats.map((s) => s.state), ['draining', 'disabled', 'off', 'ejected']);
  t.same(stats.map((s) => s.available), [false, false, false, false]);
  t.ok(stats[3]!.ejectedForMs > 59_000 && stats[3]!.ejectedForMs <= 60_000);
});

t.test('histogram series from merged latency', async (t) => {
  const table = new SharedTable();
  const b = backend(0, '::1', 9000);
  table.set(C.WEIGHT, 0, WEIGHT_SCALE);
  const r = new LatencyRecorder();
  r.record(0, 0.3, 0.2);
  r.record(0, 30, 20);
  r.record(0, 3000, -1);
  const latency = new LatencyAggregator().update([{ worker: 0, threadId: 1, snapshot: r.snapshot() }], new Set([1]));
  const text = renderMetrics(collectBackendStats(table, [b], latency, 10_000), PROC);
  const series = text.split('\n').filter((l) => l.startsWith('sluice_request_duration_seconds'));
  t.same(series, [
    'sluice_request_duration_seconds_bucket{backend="::1:9000",pool="default",le="0.0005"} 1',
    'sluice_request_duration_seconds_bucket{backend="::1:9000",pool="default",le="0.001"} 1',
    'sluice_request_duration_seconds_bucket{backend="::1:9000",pool="default",le="0.0025"} 1',
    'sluice_request_duration_seconds_bucket{backend="::1:9000",pool="default",le="0.005"} 1',
    'sluice_request_duration_seconds_bucket{backend="::1:9000",pool="default",le="0.01"} 1',
    'sluice_request_duration_seconds_bucket{backend="::1:9000",pool="default",le="0.025"} 1',
    'sluice_request_duration_seconds_bucket{backend="::1:9000",pool="default",le="0.05"} 2',
    'sluice_request_duration_seconds_bucket{backend="::1:9000",pool="default",le="0.1"} 2',
    'sluice_request_duration_seconds_bucket{backend="::1:9000",pool="default",le="0.25"} 2',
    'sluice_request_duration_seconds_bucket{backend="::1:9000",pool="default",le="0.5"} 2',
    'sluice_request_duration_seconds_bucket{backend="::1:9000",pool="default",le="1"} 2',
    'sluice_request_duration_seconds_bucket{backend="::1:9000",pool="default",le="2.5"} 2',
    'sluice_request_duration_seconds_bucket{backend="::1:9000",pool="default",le="5"} 3',
    'sluice_request_duration_seconds_bucket{backend="::1:9000",pool="default",le="10"} 3',
    'sluice_request_duration_seconds_bucket{backend="::1:9000",pool="default",le="+Inf"} 3',
    'sluice_request_duration_seconds_sum{backend="::1:9000",pool="default"} 3.0303',
    'sluice_request_duration_seconds_count{backend="::1:9000",pool="default"} 3',
  ]);
  t.ok(text.includes('sluice_upstream_duration_seconds_count{backend="::1:9000",pool="default"} 2\n'), 'upstream counts only requests with an upstream time');
});
