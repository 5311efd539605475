// What /api/routes and /api/pools show: the route table in file order with each route's hit count
// (from the shared table's route counters), and every pool with its settings and its backends'
// live state. Plain data for JSON; the names are the config file's (path_prefix, not pathPrefix),
// so what an operator reads matches what they wrote.

import type { ResolvedConfig } from '../config/types.js';
import type { PoolConfig } from '../model/pool.js';
import type { RouteAction, RouteMatch, RouteSpec } from '../model/route.js';
import type { BackendStats } from '../metrics/backend-stats.js';
import type { RouteHits } from '../metrics/prometheus.js';

export interface RouteView {
  readonly index: number;
  readonly name: string;
  readonly match: Record<string, unknown>;
  /** One line: "pool api", "split web 90 / web-canary 10", "redirect 301 /new", "respond 200". */
  readonly action: string;
  /** The pools the route can send to (none for redirect and respond). */
  readonly pools: readonly string[];
  /** Requests matched since start or since the last reload that changed the routes. */
  readonly hits: number;
}

/** `hits(i)` reads the counter of route i (SharedTable.routeHits). */
export function routeViews(config: ResolvedConfig, hits: (index: number) => number): RouteView[] {
  return config.routes.map((spec, index) => ({
    index,
    name: spec.name,
    match: matchView(spec.match),
    action: actionSummary(spec),
    pools: actionPools(spec.action),
    hits: hits(index),
  }));
}

/** Names and hits for the route counter family of /metrics. */
export function routeHits(config: ResolvedConfig, hits: (index: number) => number): RouteHits[] {
  return config.routes.map((spec, index) => ({ name: spec.name, hits: hits(index) }));
}

export function actionSummary(spec: RouteSpec): string {
  const a = spec.action;
  switch (a.kind) {
    case 'pool':
      return `pool ${a.pool}`;
    case 'split': {
      const targets = a.targets.map((t) => `${t.pool} ${t.weight}`).join(' / ');
      return a.key === null ? `split ${targets}` : `split ${targets} (sticky by ${a.key.kind}:${a.key.name})`;
    }
    case 'redirect': {
      const r = a.redirect;
      const target =
        r.location ??
        [r.scheme && `scheme ${r.scheme}`, r.host && `host ${r.host}`, r.port && `port ${r.port}`, r.path && `path ${r.path}`, r.prefixRewrite && `prefix ${r.prefixRewrite}`, r.query !== undefined && `query "${r.query}"`]
          .filter(Boolean)
          .join(', ');
      return `redirect ${r.status} ${target}`;
    }
    case 'respond':
      return `respond ${a.respond.status}`;
  }
}

function actionPools(action: RouteAction): string[] {
  if (action.kind === 'pool') return [action.pool];
  if (action.kind === 'split') return action.targets.map((t) => t.pool);
  return [];
}

/** The matchers under their file keys; `{}` matches every request. */
function matchView(m: RouteMatch): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (m.host !== undefined) out.host = m.host;
  if (m.path !== undefined) out.path = m.path;
  if (m.pathPrefix !== undefined) out.path_prefix = m.pathPrefix;
  if (m.pathRegex !== undefined) out.path_regex = m.pathRegex;
  if (m.methods !== undefined) out.methods = m.methods;
  if (m.headers !== undefined) {
    const headers: Record<string, unknown> = {};
    for (const h of m.headers) {
      const x = h.match;
      headers[h.name] = x.kind === 'exact' ? x.value : x.kind === 'prefix' ? { prefix: x.value } : x.kind === 'regex' ? { regex: x.pattern } : { present: x.present };
    }
    out.headers = headers;
  }
  if (m.query !== undefined) out.query = Object.fromEntries(m.query.map((q) => [q.name, q.value]));
  return out;
}

export interface PoolView {
  readonly name: string;
  readonly balancer: string;
  /** The routes that can send to it, by name. */
  readonly routes: readonly string[];
  readonly settings: Record<string, unknown>;
  /** Discovery sources (each backend's own `source` says which one found it); registry: whether PUT /api/registry/:pool works. */
  readonly discovery: { readonly sources: readonly unknown[]; readonly registry: boolean };
  readonly backends: { total: number; available: number };
  readonly members: readonly (BackendStats & { check: unknown })[];
}

/** Every pool in declaration order; `backends` are the API's backend views (any pool). */
export function poolViews(config: ResolvedConfig, backends: readonly (BackendStats & { check: unknown })[]): PoolView[] {
  return config.pools.map((p) => {
    const members = backends.filter((b) => b.pool === p.name);
    return {
      name: p.name,
      balancer: p.balancer,
      routes: config.routes.filter((r) => actionPools(r.action).includes(p.name)).map((r) => r.name),
      settings: settingsSummary(p),
      discovery: { sources: p.discovery?.sources ?? [], registry: p.discovery?.registry ?? false },
      backends: { total: members.length, available: members.filter((b) => b.available).length },
      members,
    };
  });
}

/** The settings an operator asks about first; the full set is the file plus the env defaults. */
function settingsSummary(p: PoolConfig): Record<string, unknown> {
  return {
    health: {
      enabled: p.healthCheck === 'on',
      mode: p.healthCheck === 'off' ? 'off' : p.healthPath === '' ? 'tcp' : 'http',
      path: p.healthPath,
      interval_ms: p.healthIntervalMs,
      timeout_ms: p.healthTimeoutMs,
      healthy_threshold: p.healthyThreshold,
      unhealthy_threshold: p.unhealthyThreshold,
    },
    connect_timeout_ms: p.connectTimeoutMs,
    request_timeout_ms: p.requestTimeoutMs,
    idle_timeout_ms: p.idleTimeoutMs,
    retries: p.retries,
    retry_budget_percent: p.retryBudgetPercent,
    max_requests_per_backend: p.maxRequestsPerBackend,
    pipeline: p.upstreamPipeline,
    pipeline_hol_ms: p.upstreamPipelineHolMs,
    upstream_connections: p.upstreamConnections,
    panic_threshold_percent: p.panicThresholdPercent,
    slow_start_ms: p.slowStartMs,
    outlier: {
      consecutive_5xx: p.outlierConsecutive5xx,
      consecutive_failures: p.outlierConsecutiveFailures,
      base_ejection_ms: p.outlierBaseEjectionMs,
      max_ejection_ms: p.outlierMaxEjectionMs,
      max_ejection_percent: p.outlierMaxEjectionPercent,
    },
  };
}
