// The model's public face: what config, the control plane and the data path import. Everything in
// src/model imports only node built-ins and its own files, so it sits below every other module.

export type { Upstream, Backend } from './upstream.js';
export * from './listener.js';
export {
  DEFAULT_POOL,
  POOL_SETTING_KEYS,
  resolvePool,
  type BalancerName,
  type HashKey,
  type PoolConfig,
  type PoolSettings,
  type PoolSpec,
  type StatusRange,
} from './pool.js';
export {
  catchAllRoute,
  type HeaderMatch,
  type HeaderMatcher,
  type HeaderOpsSpec,
  type HeaderPair,
  type PathRewriteSpec,
  type QueryMatch,
  type RedirectSpec,
  type RedirectStatus,
  type RespondSpec,
  type RouteAction,
  type RouteMatch,
  type RouteOverrides,
  type RouteSpec,
  type SplitKey,
  type SplitTarget,
} from './route.js';
export { plainRequest, type RequestView } from './request-view.js';
export { compileRoutes, NO_ROUTE, RouteTable, RouteTableError } from './route-table.js';
export { CompiledRoute, RouteError, type CompiledAction } from './compiled-route.js';
export { routeProblems } from './validate.js';
export { findShadowed, type Shadowed } from './shadow.js';
export { applyHeaderOps, NO_HEADER_OPS, type HeaderOps } from './header-ops.js';
export { REDIRECT_STATUSES, type CompiledRedirect, type RequestTarget } from './redirect.js';
export type { CompiledRespond } from './respond.js';
export { SplitChooser, cookieValueHash } from './split.js';
export { normaliseHost } from './host.js';
export { CAPACITY, MAX_POOLS, MAX_ROUTES, MAX_SERVING_WORKERS, MAX_WORKERS } from './limits.js';
export { regexProblem, compileAnchored, compileSearch } from './regex.js';
