// The admin listener on the control plane (node:http, main thread; never on the request path):
//   GET  /                             status page (static HTML, no data)
//   GET  /metrics                      Prometheus text
//   GET  /api/status                   process, workers, configuration (secrets redacted), L4 listeners
//   GET  /api/backends[/:id]           per-backend state, load, counters, latency
//   GET  /api/routes                   the route table in file order, with each route's hits
//   GET  /api/pools                    every pool: balancer, settings, routes, backends
//   POST /api/backends/:id/drain       stop new traffic (in-flight requests finish)
//   POST /api/backends/:id/enable      take traffic again
//   POST /api/backends/:id/weight      {"weight": n}, 0 to 1000
//   PUT|GET /api/registry/:pool, DELETE /api/registry/:pool/:id   registration API (registry-api.ts)
// `:id` is the table slot or "host:port". Changes are single Atomics stores into the shared table,
// so every worker sees them on its next pick. Counters are read from the table; latency needs one
// message round to the workers per scrape (concurrent scrapes share it).

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Config, ResolvedConfig } from '../config/types.js';
import { VARIABLE_SPECS } from '../config/variables.js';
import type { Backend } from '../model/upstream.js';
import { collectBackendStats, collectWebSocketCloses, type BackendStats } from '../metrics/backend-stats.js';
import { LatencyAggregator, type SlotLatencySummary, type WorkerLatency } from '../metrics/latency-merge.js';
import { CONTENT_TYPE as METRICS_CONTENT_TYPE, renderMetrics } from '../metrics/prometheus.js';
import { Admin, C, H, WEIGHT_SCALE } from '../state/layout.js';
import { poolViews, routeHits, routeViews } from './routing-views.js';
import type { SharedTable } from '../state/table.js';
import { hostAllowed, mutationRefusal, TokenCheck, type Refusal } from './auth.js';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from './status-page.js';
import { l4Views, type L4Source } from './l4-views.js';
import { renderL4Metrics } from '../metrics/l4-metrics.js';
import { renderEdgeMetrics } from '../edge/metrics.js';
import type { Registry } from '../discovery/registry.js';
import { REGISTRY_PATH, registryCall } from './registry-api.js';

/** Request bodies (only /weight has one) are tiny; anything bigger is refused unread. */
export const MAX_BODY_BYTES = 4096;
/** How long a scrape waits for the workers' histograms before answering with what it has. */
const LATENCY_TIMEOUT_MS = 1000;
/** Same cap as SLUICE_UPSTREAMS weights (config/value-parsers.ts). */
const MAX_WEIGHT = 1000;
/** Admin traffic is a few scrapers and browsers; this bounds what a misbehaving client can hold. */
const MAX_CONNECTIONS = 256;
/** Names that look secret are redacted even if their variable forgot to say so. */
const SECRET_NAME = /TOKEN|PASSWORD|PASSPHRASE|SECRET/;

/** What the admin server needs from the supervisor (it satisfies this as is). */
export interface WorkerSource {
  readonly backends: readonly Backend[];
  /** The configuration last published (pools and routes); the start-up config when absent. */
  readonly config?: ResolvedConfig;
  liveThreadIds(): Set<number>;
  latencySnapshots(timeoutMs: number): Promise<WorkerLatency[]>;
  /** The L4 threads (src/supervisor/l4-supervisor.ts), when there are any. */
  readonly l4?: L4Source;
}

/** Active health checks' view of each backend (the checker satisfies this). */
export interface HealthSource {
  snapshot(): readonly { slot: number; state: string; successes: number; failures: number; lastCheck: unknown; since: number }[];
}

export interface AdminOptions {
  config: Config;
  table: SharedTable;
  workers: WorkerSource;
  health?: HealthSource;
  log: Logger;
  version: string;
  /** The registration API's store (absent: no pool takes registrations). */
  registry?: Registry | undefined;
}

class HttpError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

type Action = 'drain' | 'enable' | 'weight';
const ACTIONS: ReadonlySet<string> = new Set<Action>(['drain', 'enable', 'weight']);

export class AdminServer {
  readonly #options: AdminOptions;
  readonly #log: Logger;
  readonly #token: TokenCheck;
  readonly #server: http.Server;
  readonly #latency = new LatencyAggregator();
  #collecting: Promise<Map<number, SlotLatencySummary>> | null = null;
  readonly #startedAt = Date.now() - process.uptime() * 1000;

  constructor(options: AdminOptions) {
    this.#options = options;
    this.#log = options.log.child({ component: 'admin' });
    this.#token = new TokenCheck(options.config.adminToken);
    this.#server = http.createServer({ requestTimeout: 10_000, headersTimeout: 10_000, keepAliveTimeout: 5000 }, (req, res) => {
      this.#handle(req, res).catch((err: unknown) => this.#fail(req, res, err));
    });
    this.#server.maxConnections = MAX_CONNECTIONS;
  }

  /** Listen; rejects (EADDRINUSE, EACCES…) without leaving anything open. */
  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#server.once('error', onError);
      this.#server.listen(port, host, () => {
        this.#server.off('error', onError);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    const method = req.method ?? 'GET';

    if (!this.#token.required && !hostAllowed(req, this.#options.config.adminListen?.host ?? '')) {
      return this.#refuse(req, res, { status: 403, reason: `Host ${JSON.stringify(req.headers.host)} not allowed` });
    }
    if (path === '/' || path === '/index.html') {
      allow(method, ['GET', 'HEAD']);
      return this.#send(res, 200, STATUS_PAGE_HTML, {
        'content-type': 'text/html; charset=utf-8',
        'content-security-policy': STATUS_PAGE_CSP,
        'x-frame-options': 'DENY',
        'referrer-policy': 'no-referrer',
      });
    }
    // Registrations change state as POSTs do: the same guard (elsewhere PUT and DELETE are only 405s).
    const changes = method === 'POST' || ((method === 'PUT' || method === 'DELETE') && path.startsWith('/api/registry/'));
    const refusal = this.#token.check(req) ?? (changes ? mutationRefusal(req) : null);
    if (refusal !== null) return this.#refuse(req, res, refusal);

    if (path === '/metrics') {
      allow(method, ['GET', 'HEAD']);
      const routing = this.#routing();
      const hits = routing === null ? [] : routeHits(routing, (i) => this.#options.table.routeHits(i));
      const l4 = this.#options.workers.l4;
      const [stats, l4Stats] = await Promise.all([this.#backendStats(), l4?.stats(LATENCY_TIMEOUT_MS) ?? []]);
      const cfg = this.#options.config;
      let body = renderMetrics(stats, this.#processStats(), hits, collectWebSocketCloses(this.#options.table));
      if (l4 !== undefined) body += renderL4Metrics(l4Stats, l4.restarts);
      body += renderEdgeMetrics(this.#options.table.words, 'routes' in cfg ? (cfg as ResolvedConfig).routes : []);
      return this.#send(res, 200, body, { 'content-type': METRICS_CONTENT_TYPE });
    }
    if (path === '/api/status') {
      allow(method, ['GET', 'HEAD']);
      const l4 = this.#options.workers.l4;
      const listeners = l4 === undefined ? [] : l4Views(l4, await l4.stats(LATENCY_TIMEOUT_MS));
      return this.#json(res, 200, { ...this.#status(), l4: listeners });
    }
    if (path === '/api/routes') {
      allow(method, ['GET', 'HEAD']);
      const routing = this.#routing();
      const routes = routing === null ? [] : routeViews(routing, (i) => this.#options.table.routeHits(i));
      return this.#json(res, 200, { file: routing?.configFile || null, routes });
    }
    if (path === '/api/pools') {
      allow(method, ['GET', 'HEAD']);
      const routing = this.#routing();
      return this.#json(res, 200, { pools: routing === null ? [] : poolViews(routing, await this.#backendViews()) });
    }
    if (path === '/api/backends') {
      allow(method, ['GET', 'HEAD']);
      return this.#json(res, 200, { backends: await this.#backendViews() });
    }
    const r = REGISTRY_PATH.exec(path);
    if (r !== null) {
      const pool = decodeSegment(r[1]!);
      const id = r[2] === undefined ? undefined : decodeSegment(r[2]);
      const body = method === 'PUT' ? await readBody(req) : '';
      const answer = await registryCall(this.#options.registry, method, pool, id, body);
      if (method !== 'GET' && method !== 'HEAD' && answer.status === 200) this.#log.info({ remote: req.socket.remoteAddress, method, pool, id }, 'registry change');
      const allowHeader = answer.status === 405 ? { allow: (answer.body as { allow: string }).allow } : undefined;
      return this.#json(res, answer.status, answer.body, allowHeader);
    }
    const m = /^\/api\/backends\/([^/]+)(?:\/([^/]+))?$/.exec(path);
    if (m !== null) {
      const backend = this.#find(decodeSegment(m[1]!), url.searchParams.get('pool'));
      const action = m[2];
      if (action === undefined) {
        allow(method, ['GET', 'HEAD']);
        return this.#json(res, 200, (await this.#backendViews(backend))[0]);
      }
      if (!ACTIONS.has(action)) throw new HttpError(404, `no such action: ${action}`);
      allow(method, ['POST']);
      const body = action === 'weight' ? await readBody(req) : '';
      this.#apply(backend, action as Action, body);
      const weight = action === 'weight' ? this.#options.table.get(C.WEIGHT, backend.slot) / WEIGHT_SCALE : undefined;
      this.#log.info({ remote: req.socket.remoteAddress, backend: backend.id, action, weight }, 'admin change');
      return this.#json(res, 200, (await this.#backendViews(backend))[0]);
    }
    throw new HttpError(404, `not found: ${path}`);
  }

  #apply(backend: Backend, action: Action, body: string): void {
    const table = this.#options.table;
    if (action === 'drain') return table.set(C.ADMIN, backend.slot, Admin.DRAINING);
    if (action === 'enable') return table.set(C.ADMIN, backend.slot, Admin.ENABLED);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      throw new HttpError(400, 'body must be JSON: {"weight": n}');
    }
    const weight = (parsed as { weight?: unknown } | null)?.weight;
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0 || weight > MAX_WEIGHT) {
      throw new HttpError(400, `weight must be a number from 0 to ${MAX_WEIGHT}`);
    }
    table.set(C.WEIGHT, backend.slot, Math.round(weight * WEIGHT_SCALE));
  }

  /**
   * A backend by slot number or "host:port" (IPv6 as [::1]:8080 or ::1:8080); `pool` (the ?pool=
   * query) picks among the backends one address has in several pools.
   */
  #find(id: string, pool: string | null): Backend {
    const all = this.#options.workers.backends;
    const backends = pool === null ? all : all.filter((b) => b.pool === pool);
    const found = /^\d+$/.test(id)
      ? backends.find((b) => b.slot === Number(id))
      : backends.find((b) => b.id === id || b.id === id.replace(/^\[([^\]]+)\]/, '$1'));
    if (found === undefined) throw new HttpError(404, `no such backend: ${id}`);
    return found;
  }

  /** The running pools and routes: what the workers were last given (null without any). */
  #routing(): ResolvedConfig | null {
    const running = this.#options.workers.config ?? this.#options.config;
    return 'pools' in running ? (running as ResolvedConfig) : null;
  }

  /** Each pool's EWMA decay (pools may set their own), the global one for any other. */
  #decay(): (pool: string) => number {
    const fallback = this.#options.config.ewmaDecayMs;
    const pools = new Map((this.#routing()?.pools ?? []).map((p) => [p.name, p.ewmaDecayMs]));
    return (pool) => pools.get(pool) ?? fallback;
  }

  async #backendStats(): Promise<BackendStats[]> {
    const latency = await this.#collectLatency();
    const { table, workers } = this.#options;
    return collectBackendStats(table, workers.backends, latency, this.#decay());
  }

  /** The API's view: the stats plus what the active checker last saw. */
  async #backendViews(only?: Backend): Promise<(BackendStats & { check: unknown })[]> {
    const latency = await this.#collectLatency();
    const { table, workers, health } = this.#options;
    const checks = new Map((health?.snapshot() ?? []).map((h) => [h.slot, h]));
    const sources = new Map(workers.backends.map((b) => [b.slot, b.upstream.source ?? 'static']));
    return collectBackendStats(table, only ? [only] : workers.backends, latency, this.#decay()).map((b) => {
      const h = checks.get(b.slot);
      const check = h ? { state: h.state, successes: h.successes, failures: h.failures, lastCheck: h.lastCheck, since: h.since } : null;
      return { ...b, source: sources.get(b.slot) ?? 'static', check };
    });
  }

  /** One round of latency snapshots from the workers; callers that arrive meanwhile share it. */
  #collectLatency(): Promise<Map<number, SlotLatencySummary>> {
    this.#collecting ??= (async () => {
      try {
        const workers = this.#options.workers;
        const replies = await workers.latencySnapshots(LATENCY_TIMEOUT_MS);
        const table = this.#options.table;
        return this.#latency.update(replies, workers.liveThreadIds(), (slot) => table.get(C.SLOT_GEN, slot));
      } finally {
        this.#collecting = null;
      }
    })();
    return this.#collecting;
  }

  #processStats() {
    const { config, table, workers, version } = this.#options;
    return {
      version,
      startTimeSeconds: Math.floor(this.#startedAt / 1000),
      workersConfigured: config.workers,
      workersRunning: workers.liveThreadIds().size,
      workerRestarts: table.header(H.WORKER_RESTARTS),
    };
  }

  #status(): Record<string, unknown> {
    const { config, table, workers } = this.#options;
    const p = this.#processStats();
    const now = table.now();
    const backends = workers.backends;
    return {
      version: p.version,
      pid: process.pid,
      node: process.version,
      startedAt: new Date(this.#startedAt).toISOString(),
      uptimeSeconds: Math.floor((Date.now() - this.#startedAt) / 1000),
      workers: { configured: p.workersConfigured, running: p.workersRunning, restarts: p.workerRestarts },
      balancer: config.balancer,
      backends: { total: backends.length, available: backends.filter((b) => table.available(b.slot, now)).length },
      pools: this.#routing()?.pools.length ?? 1,
      routes: this.#routing()?.routes.length ?? 1,
      config: configSummary(config),
    };
  }

  #refuse(req: IncomingMessage, res: ServerResponse, refusal: Refusal): void {
    this.#log.warn(
      { remote: req.socket.remoteAddress, method: req.method, path: req.url, status: refusal.status, reason: refusal.reason },
      'admin call refused',
    );
    const headers: Record<string, string> = {};
    if (refusal.status === 401) headers['www-authenticate'] = 'Bearer realm="sluice-admin"';
    this.#json(res, refusal.status, { error: refusal.reason }, headers);
  }

  #fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    if (err instanceof HttpError) {
      if (err.status === 413) res.setHeader('connection', 'close');
      return this.#json(res, err.status, { error: err.message }, err.headers);
    }
    this.#log.error({ err: (err as Error).message, stack: (err as Error).stack, path: req.url }, 'admin call failed');
    if (!res.headersSent) this.#json(res, 500, { error: 'internal error' });
    else res.destroy();
  }

  #json(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
    this.#send(res, status, `${JSON.stringify(value, null, 2)}\n`, { 'content-type': 'application/json; charset=utf-8', ...headers });
  }

  #send(res: ServerResponse, status: number, body: string, headers: Record<string, string>): void {
    res.writeHead(status, {
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'content-length': Buffer.byteLength(body),
      ...headers,
    });
    res.end(body);
  }
}

/** Throws 405 (with Allow) unless `method` is one of `allowed`. */
function allow(method: string, allowed: readonly string[]): void {
  if (!allowed.includes(method)) throw new HttpError(405, `method ${method} not allowed`, { allow: allowed.join(', ') });
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, 'malformed percent-encoding in the path');
  }
}

/** The body as text, at most MAX_BODY_BYTES (413 past that, without reading the rest). */
function readBody(req: IncomingMessage): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) return Promise.reject(new HttpError(413, `body over ${MAX_BODY_BYTES} bytes`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.removeAllListeners('data');
        req.pause();
        reject(new HttpError(413, `body over ${MAX_BODY_BYTES} bytes`));
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Every variable by name with its parsed value; secrets only say whether they are set. */
export function configSummary(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const spec of VARIABLE_SPECS) {
    const value = config[spec.key];
    out[spec.name] = spec.secret === true || SECRET_NAME.test(spec.name) ? (value === '' ? '(unset)' : '(set)') : value;
  }
  return out;
}

/** Start the admin listener (main thread). Rejects when it cannot listen. */
export async function startAdminServer(options: AdminOptions): Promise<{ server: AdminServer; address: AddressInfo }> {
  const listen = options.config.adminListen;
  if (listen === null) throw new Error('admin listener is off');
  const server = new AdminServer(options);
  try {
    const address = await server.listen(listen.host, listen.port);
    return { server, address };
  } catch (err) {
    await server.close().catch(() => {});
    throw new Error(`SLUICE_ADMIN_LISTEN ${listen.host}:${listen.port}: ${(err as Error).message}`);
  }
}
