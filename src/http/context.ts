// Per-worker state that every request in that worker shares: the shared table, the compiled route
// table, each pool's runtime (policy, outlier detector, retry budget), one keep-alive connection
// pool per backend slot, the reusable head builder and request view, and the outcome bookkeeping
// (shared counters, latency) done once per request. Routes and pools are swapped whole on a reload:
// a request keeps the route and pool runtime it started with.

import type { Logger } from 'pino';
import type { ResolvedConfig } from '../config/types.js';
import type { Backend } from '../model/upstream.js';
import type { PoolConfig } from '../model/pool.js';
import { compileRoutes, type RouteTable } from '../model/route-table.js';
import { C, MAX_ROUTES, routeCell } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';
import { Pool } from '../upstream/pool.js';
import { RequestHeadBuilder, type UpstreamTarget } from './request-head.js';
import { NO_HEADER_OPS } from '../model/header-ops.js';
import { UwsRequestView } from './request-view.js';
import { PoolRuntime } from './pool-runtime.js';
import { LatencyRecorder } from '../metrics/latency.js';
import type { AccessLog } from './access-log.js';
import { upstreamTls } from '../upstream/tls-options.js';
import { attachEdge, closeEdge } from '../edge/attach.js';

export type { Backend } from '../model/upstream.js';

/** Pooled requests allowed to queue per backend per worker before fast 503s. */
const MAX_WAITING = 4096;
/** How often connection deadlines are checked: timeouts fire within this much of their value. */
const SWEEP_MS = 50;

const STATUS_COLUMN = [C.RESP_1XX, C.RESP_1XX, C.RESP_2XX, C.RESP_3XX, C.RESP_4XX, C.RESP_5XX];

export class ProxyContext {
  readonly table: SharedTable;
  /** Access log, or null when SLUICE_ACCESS_LOG is off. */
  accessLog: AccessLog | null = null;
  /** This worker's latency histograms (merged by the admin server at scrape time). */
  readonly latency: LatencyRecorder;
  readonly builder = new RequestHeadBuilder();
  /** Filled per request for route matching (one per worker: matching is synchronous). */
  readonly view = new UwsRequestView();
  /** Where the request being built goes (refilled per request, read by the builder at once). */
  readonly target: UpstreamTarget = { path: '', host: null, headers: NO_HEADER_OPS };
  /** The compiled route table (swapped whole on reload). */
  routes: RouteTable;
  /** Connection pools indexed by backend slot (sparse). */
  pools: (Pool | undefined)[] = [];
  /** Requests this worker has in flight (all backends). */
  inFlight = 0;
  /** Draining: finish what is in flight, close client connections after their response. */
  draining = false;
  closeAfter = false;
  /** SLUICE_ACCEPT_PROXY_PROTOCOL per listener: the client address comes from a PROXY v2 header (proxy-header.ts). */
  acceptProxyPlain = false;
  acceptProxyTls = false;
  onIdle: (() => void) | null = null;

  readonly #log: Logger;
  /** Pool runtimes by name (swapped whole on reload). */
  #runtimes = new Map<string, PoolRuntime>();
  /** Pools of removed backends with exchanges still running. */
  readonly #retired = new Set<Pool>();
  #lastInternalLog = 0;
  #trusted = new Set<string>();
  readonly #timer: NodeJS.Timeout;

  constructor(
    config: ResolvedConfig,
    table: SharedTable,
    backends: readonly Backend[],
    log: Logger,
    seed: number,
    latency: LatencyRecorder = new LatencyRecorder(),
  ) {
    this.latency = latency;
    this.table = table;
    this.#log = log;
    this.routes = compileRoutes(config.routes);
    attachEdge(this.routes, table, config.trustedProxies, log);
    this.#apply(config);
    this.#install(config, backends, seed);
    this.#timer = setInterval(() => this.#sweep(), SWEEP_MS);
    this.#timer.unref();
  }

  /**
   * Reload: routes, pools, settings and membership in one step. Requests in flight keep the route
   * and pool runtime they started with; connection pools to backends that stay are kept (their
   * connections stay warm) and take their pool's new timeouts.
   */
  setConfig(config: ResolvedConfig, backends: readonly Backend[], seed: number): void {
    const routes = compileRoutes(config.routes);
    attachEdge(routes, this.table, config.trustedProxies, this.#log);
    this.#apply(config);
    this.routes = routes;
    const old = this.pools;
    this.#install(config, backends, seed);
    this.#retire(old);
  }

  /** Derive the per-request values from a config once, not per request. */
  #apply(config: ResolvedConfig): void {
    this.builder.maxHeadBytes = config.maxHeaderBytes;
    this.acceptProxyPlain = config.acceptProxyProtocol === 'all' || config.acceptProxyProtocol === 'plain';
    this.acceptProxyTls = config.acceptProxyProtocol === 'all' || config.acceptProxyProtocol === 'tls';
    this.#trusted = new Set(config.trustedProxies);
  }

  trusted(ip: string): boolean {
    return this.#trusted.size !== 0 && this.#trusted.has(ip);
  }

  /** The runtime of the pool named `name` (every route's pool exists: the config loader checks). */
  runtime(name: string): PoolRuntime | undefined {
    return this.#runtimes.get(name);
  }

  /** A request matched route `index`: its hit counter (read by the admin API and metrics). */
  countRoute(index: number): void {
    if (index < MAX_ROUTES) Atomics.add(this.table.words, routeCell(index), 1);
  }

  onStart(runtime: PoolRuntime, slot: number): void {
    this.inFlight++;
    runtime.deposit();
    this.table.acquire(slot);
    this.table.add(C.REQUESTS, slot, 1);
  }

  /** A retry moves the request to another backend: in-flight follows it, and both are counted. */
  moveSlot(from: number, to: number): void {
    this.table.release(from);
    this.table.add(C.RETRIES, from, 1);
    this.table.acquire(to);
    this.table.add(C.REQUESTS, to, 1);
  }

  /** A bug caught at the request handler (see forward.ts `handle`): logged, at most once a second. */
  onInternalError(err: Error): void {
    const t = Date.now();
    if (t - this.#lastInternalLog < 1000) return;
    this.#lastInternalLog = t;
    this.#log.error({ err: err.message, stack: err.stack }, 'internal error in the request path');
  }

  /** Exactly once per request that took a slot. */
  onDone(slot: number, status: number, totalMs: number, upstreamMs: number): void {
    this.table.release(slot);
    this.latency.record(slot, totalMs, upstreamMs);
    const cls = (status / 100) | 0;
    const column = STATUS_COLUMN[cls];
    if (column !== undefined) this.table.add(column, slot, 1);
    if (--this.inFlight === 0 && this.onIdle !== null) this.onIdle();
  }

  /** Stop the deadline sweep and close idle upstream connections (drain). */
  close(): void {
    clearInterval(this.#timer);
    closeEdge();
    for (const pool of this.pools) pool?.close();
  }

  /**
   * Crash: stop the sweep and destroy every upstream connection, busy ones and those of retired
   * pools included, so no backend can keep the dying thread alive by keeping a connection open.
   */
  abort(): void {
    clearInterval(this.#timer);
    closeEdge();
    for (const pool of this.pools) pool?.destroyAll();
    for (const pool of this.#retired) pool.destroyAll();
    this.#retired.clear();
  }

  /** New connection pools for new backends, and a runtime per pool; swapped in whole. */
  #install(config: ResolvedConfig, backends: readonly Backend[], seed: number): void {
    const settings = new Map<string, PoolConfig>();
    for (const p of config.pools) settings.set(p.name, p);
    const members = new Map<string, Backend[]>();
    const next: (Pool | undefined)[] = [];
    for (const b of backends) {
      const s = settings.get(b.pool);
      if (s === undefined) continue; // a pool the config no longer has
      let list = members.get(b.pool);
      if (list === undefined) members.set(b.pool, (list = []));
      list.push(b);
      const old = this.pools[b.slot];
      const keep = old !== undefined && old.host === b.upstream.host && old.port === b.upstream.port;
      if (keep) old.configure(s.connectTimeoutMs, s.requestTimeoutMs, s.idleTimeoutMs, s.upstreamPipelineHolMs);
      next[b.slot] = keep
        ? old
        : new Pool(this.table, {
            host: b.upstream.host,
            port: b.upstream.port,
            slot: b.slot,
            max: s.upstreamConnections,
            maxWaiting: MAX_WAITING,
            connectTimeoutMs: s.connectTimeoutMs,
            requestTimeoutMs: s.requestTimeoutMs,
            idleTimeoutMs: s.idleTimeoutMs,
            pipelineHolMs: s.upstreamPipelineHolMs,
            tls: upstreamTls(b.upstream, s),
          });
    }
    const runtimes = new Map<string, PoolRuntime>();
    for (const s of config.pools) {
      const list = members.get(s.name) ?? [];
      const index = list.length > 0 ? list[0]!.poolIndex : 0;
      runtimes.set(s.name, new PoolRuntime(this.table, s, list, index, seed, this.#log, this.#runtimes.get(s.name)));
    }
    this.pools = next;
    this.#runtimes = runtimes;
  }

  /**
   * Close the pools of backends that left, once the new pools and policies are installed: requests
   * queued on a closing pool are re-picked, and must find the new membership, not the old one.
   * Their busy connections still finish their exchanges, so the sweep keeps watching them.
   */
  #retire(old: readonly (Pool | undefined)[]): void {
    for (let slot = 0; slot < old.length; slot++) {
      const pool = old[slot];
      if (pool && this.pools[slot] !== pool) {
        this.#retired.add(pool);
        pool.close();
      }
    }
  }

  #sweep(): void {
    const now = this.table.now();
    for (const pool of this.pools) pool?.sweep(now);
    for (const pool of this.#retired) {
      if (pool.size === 0) this.#retired.delete(pool);
      else pool.sweep(now);
    }
  }
}
