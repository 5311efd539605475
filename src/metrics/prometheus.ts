// Prometheus text exposition format (version 0.0.4) for /metrics: counters and gauges read from the
// shared table, latency histograms merged from every worker. Names follow Prometheus conventions:
// sluice_ prefix, _total on counters, base units (seconds) in the name.
//
// Per-backend counters live in the table by slot only, so no label splits them further (there is no
// `listener` label: a request to a backend is counted the same from the HTTP and HTTPS listeners).
// Every per-backend series carries `backend` ("host:port") and `pool`: a backend is one (pool,
// upstream) pair, so the same address in two pools is two series. Route hits are labelled by the
// route's name only (a name from the config file or "route-<index>"), never by a request's path,
// so the number of series is bounded by the route table.

import type { BackendStats, WebSocketCloseCount } from './backend-stats.js';
import { CODE_CLASSES, ERROR_KINDS } from './backend-stats.js';
import { BUCKET_BOUNDS_SECONDS, type LatencySummary } from './latency-merge.js';

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface ProcessStats {
  version: string;
  startTimeSeconds: number;
  workersConfigured: number;
  workersRunning: number;
  workerRestarts: number;
}

/** Label values: backslash, double quote and line feed are escaped (exposition format rules). */
/** One route's hit count, by name, in table order. */
export interface RouteHits {
  readonly name: string;
  readonly hits: number;
}

export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text: backslash and line feed are escaped. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

const BOUND_LABELS = BUCKET_BOUNDS_SECONDS.map(formatValue);

export class Exposition {
  readonly #lines: string[] = [];

  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): this {
    this.#lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    return this;
  }

  sample(name: string, labels: Readonly<Record<string, string>>, value: number): this {
    const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
    this.#lines.push(pairs.length === 0 ? `${name} ${formatValue(value)}` : `${name}{${pairs.join(',')}} ${formatValue(value)}`);
    return this;
  }

  histogram(name: string, labels: Readonly<Record<string, string>>, h: LatencySummary): this {
    BOUND_LABELS.forEach((le, i) => this.sample(`${name}_bucket`, { ...labels, le }, h.buckets[i]!));
    this.sample(`${name}_bucket`, { ...labels, le: '+Inf' }, h.count);
    this.sample(`${name}_sum`, labels, h.sumSeconds);
    this.sample(`${name}_count`, labels, h.count);
    return this;
  }

  text(): string {
    return `${this.#lines.join('\n')}\n`;
  }
}

/** The whole /metrics body. */
export function renderMetrics(
  backends: readonly BackendStats[],
  proc: ProcessStats,
  routes: readonly RouteHits[] = [],
  wsCloses: readonly WebSocketCloseCount[] = [],
): string {
  const out = new Exposition();
  out
    .family('sluice_build_info', 'gauge', 'Always 1; the version is a label.')
    .sample('sluice_build_info', { version: proc.version }, 1)
    .family('sluice_start_time_seconds', 'gauge', 'When this Sluice process started, unix seconds.')
    .sample('sluice_start_time_seconds', {}, proc.startTimeSeconds)
    .family('sluice_workers', 'gauge', 'Proxy worker threads running now.')
    .sample('sluice_workers', {}, proc.workersRunning)
    .family('sluice_workers_configured', 'gauge', 'Proxy worker threads configured (SLUICE_WORKERS).')
    .sample('sluice_workers_configured', {}, proc.workersConfigured)
    .family('sluice_worker_restarts_total', 'counter', 'Proxy workers that died and were replaced.')
    .sample('sluice_worker_restarts_total', {}, proc.workerRestarts);

  const perBackend = (
    name: string,
    type: 'counter' | 'gauge',
    help: string,
    value: (b: BackendStats) => number,
  ): void => {
    out.family(name, type, help);
    for (const b of backends) out.sample(name, { backend: b.id, pool: b.pool }, value(b));
  };

  out.family('sluice_requests_total', 'counter', 'Finished requests by backend and class of the status sent to the client.');
  for (const b of backends) {
    for (const cls of CODE_CLASSES) out.sample('sluice_requests_total', { backend: b.id, pool: b.pool, code_class: cls }, b.responses[cls]);
  }
  out.family('sluice_upstream_errors_total', 'counter', 'Failed exchanges with a backend by kind: connect, timeout, reset, protocol.');
  for (const b of backends) {
    for (const kind of ERROR_KINDS) out.sample('sluice_upstream_errors_total', { backend: b.id, pool: b.pool, kind }, b.errors[kind]);
  }
  perBackend('sluice_retries_total', 'counter', 'Requests sent again on this backend: after a failure, or by the pipelining guard.', (b) => b.retries);
  perBackend('sluice_ejections_total', 'counter', 'Times outlier detection ejected the backend.', (b) => b.ejections);
  perBackend('sluice_backend_in_flight', 'gauge', 'Requests in flight to the backend, all workers.', (b) => b.inFlight);
  perBackend('sluice_backend_open_connections', 'gauge', 'Open upstream connections to the backend, all workers.', (b) => b.openConnections);
  perBackend(
    'sluice_backend_healthy',
    'gauge',
    '1 unless active health checks mark the backend down (not yet checked counts as healthy).',
    (b) => (b.health === 'unhealthy' ? 0 : 1),
  );
  perBackend(
    'sluice_backend_available',
    'gauge',
    '1 when the balancer may pick the backend: healthy, enabled, weight above 0 and not ejected.',
    (b) => (b.available ? 1 : 0),
  );
  perBackend('sluice_backend_weight', 'gauge', 'Live balancing weight (configured, or as set through the admin API).', (b) => b.weight);
  perBackend(
    'sluice_backend_ewma_seconds',
    'gauge',
    'Peak-EWMA latency estimate the balancer uses, decayed to now; 0 before the first response.',
    (b) => (b.ewmaMs ?? 0) / 1000,
  );

  perBackend('sluice_backend_websockets', 'gauge', 'Proxied WebSockets open to the backend, all workers.', (b) => b.websockets.open);
  out.family('sluice_websocket_messages_total', 'counter', 'WebSocket messages relayed, by backend and direction (to_backend, to_client).');
  for (const b of backends) {
    out.sample('sluice_websocket_messages_total', { backend: b.id, pool: b.pool, direction: 'to_backend' }, b.websockets.messagesToBackend);
    out.sample('sluice_websocket_messages_total', { backend: b.id, pool: b.pool, direction: 'to_client' }, b.websockets.messagesToClient);
  }
  out.family('sluice_websocket_bytes_total', 'counter', 'WebSocket payload bytes relayed, by backend and direction (to_backend, to_client).');
  for (const b of backends) {
    out.sample('sluice_websocket_bytes_total', { backend: b.id, pool: b.pool, direction: 'to_backend' }, b.websockets.bytesToBackend);
    out.sample('sluice_websocket_bytes_total', { backend: b.id, pool: b.pool, direction: 'to_client' }, b.websockets.bytesToClient);
  }
  out.family('sluice_websocket_closes_total', 'counter', 'Proxied WebSockets ended, by who ended them (client, backend, sluice) and close code.');
  for (const c of wsCloses) out.sample('sluice_websocket_closes_total', { by: c.by, code: c.code }, c.count);

  out.family(
    'sluice_request_duration_seconds',
    'histogram',
    'Time from the client request to the end of the response, per backend (merged HdrHistograms of all workers).',
  );
  for (const b of backends) out.histogram('sluice_request_duration_seconds', { backend: b.id, pool: b.pool }, b.latency.total);
  out.family(
    'sluice_upstream_duration_seconds',
    'histogram',
    'Time from sending the request to the backend to its last response byte, per backend.',
  );
  for (const b of backends) out.histogram('sluice_upstream_duration_seconds', { backend: b.id, pool: b.pool }, b.latency.upstream);
  out.family(
    'sluice_route_requests_total',
    'counter',
    'Requests matched by each route, by route name; zeroed when a reload changes the route table.',
  );
  for (const r of routes) out.sample('sluice_route_requests_total', { route: r.name }, r.hits);
  return out.text();
}
