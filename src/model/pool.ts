// Pools: a name, its upstreams, and the per-pool settings (balancer, timeouts, health, outlier,
// retry, connection and upstream-TLS). Every pool-level SLUICE_* variable is a default that a pool
// may override; the field names are the Config field names, so a resolved pool can be passed to any
// function that reads those settings from a Config.

import type { Upstream } from './upstream.js';
import { NO_DISCOVERY, type PoolDiscovery } from './discovery.js';

export type BalancerName =
  | 'round-robin'
  | 'weighted-round-robin'
  | 'random'
  | 'weighted-random'
  | 'least-request'
  | 'peak-ewma'
  | 'peak-ewma-classic'
  | 'least-conn'
  | 'ring-hash'
  | 'maglev';

/** Inclusive range of HTTP statuses a health check accepts: "2xx" is 200..299, "204" is 204..204. */
export interface StatusRange {
  readonly from: number;
  readonly to: number;
}

/** How hashing policies (and sticky splits) find their key. */
export type HashKey = { kind: 'header'; name: string } | { kind: 'cookie'; name: string } | { kind: 'ip' };

/** Everything a pool may set for itself. Same names and meanings as the Config fields. */
export interface PoolSettings {
  balancer: BalancerName;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  /** Idle keep-alive connections to this pool's backends (the client side stays global). */
  idleTimeoutMs: number;
  maxBodyBytes: number;
  upstreamConnections: number;
  leastRequestBias: number;
  ewmaDecayMs: number;
  ewmaDefaultRttMs: number;
  panicThresholdPercent: number;
  slowStartMs: number;
  hashKey: HashKey;
  maglevTableSize: number;
  upstreamCa: string;
  upstreamInsecure: boolean;
  healthCheck: 'on' | 'off';
  healthPath: string;
  healthExpect: StatusRange[];
  healthIntervalMs: number;
  healthTimeoutMs: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  outlierConsecutive5xx: number;
  outlierConsecutiveFailures: number;
  outlierBaseEjectionMs: number;
  outlierMaxEjectionMs: number;
  outlierMaxEjectionPercent: number;
  retries: number;
  retryBudgetPercent: number;
  maxRequestsPerBackend: number;
  /** Requests one backend connection may carry at once (HTTP/1.1 pipelining of GET/HEAD); 1 = off. */
  upstreamPipeline: number;
  /** A pipelined request waiting longer than this behind another response is sent again elsewhere. */
  upstreamPipelineHolMs: number;
}

// A record, not a list, so that the compiler rejects a PoolSettings field missing here.
const KEYS: { readonly [K in keyof PoolSettings]: true } = {
  balancer: true,
  connectTimeoutMs: true,
  requestTimeoutMs: true,
  idleTimeoutMs: true,
  maxBodyBytes: true,
  upstreamConnections: true,
  leastRequestBias: true,
  ewmaDecayMs: true,
  ewmaDefaultRttMs: true,
  panicThresholdPercent: true,
  slowStartMs: true,
  hashKey: true,
  maglevTableSize: true,
  upstreamCa: true,
  upstreamInsecure: true,
  healthCheck: true,
  healthPath: true,
  healthExpect: true,
  healthIntervalMs: true,
  healthTimeoutMs: true,
  healthyThreshold: true,
  unhealthyThreshold: true,
  outlierConsecutive5xx: true,
  outlierConsecutiveFailures: true,
  outlierBaseEjectionMs: true,
  outlierMaxEjectionMs: true,
  outlierMaxEjectionPercent: true,
  retries: true,
  retryBudgetPercent: true,
  maxRequestsPerBackend: true,
  upstreamPipeline: true,
  upstreamPipelineHolMs: true,
};

export const POOL_SETTING_KEYS = Object.keys(KEYS) as readonly (keyof PoolSettings)[];

/** The pool every SLUICE_UPSTREAMS deployment has, and the one the implicit catch-all route names. */
export const DEFAULT_POOL = 'default';

/** A pool as declared: its upstreams and only the settings it overrides. */
export interface PoolSpec {
  readonly name: string;
  readonly upstreams: readonly Upstream[];
  readonly overrides: Partial<PoolSettings>;
  /** L4: a PROXY header of this version ahead of every backend connection (docs/l4.md). */
  readonly proxyProtocol?: 'v1' | 'v2';
  /** Discovery sources (model/discovery.ts); none when absent. */
  readonly discovery?: PoolDiscovery;
}

/** A pool with every setting resolved (defaults, then the pool's own overrides). */
export interface PoolConfig extends PoolSettings {
  readonly name: string;
  /** Static upstreams, and (once the discovery coordinator composed them in) discovered ones. */
  readonly upstreams: readonly Upstream[];
  /** L4 only: see PoolSpec.proxyProtocol. */
  readonly proxyProtocol?: 'v1' | 'v2';
  /** Absent on pools built before discovery existed (tests, the demo pool): none. */
  readonly discovery?: PoolDiscovery;
}

/** `defaults` may be a whole Config: only the pool-level fields are read. */
export function resolvePool(spec: PoolSpec, defaults: PoolSettings): PoolConfig {
  const settings = {} as PoolSettings;
  for (const key of POOL_SETTING_KEYS) copySetting(settings, key, spec.overrides[key] ?? defaults[key]);
  const discovery = spec.discovery ?? NO_DISCOVERY;
  return {
    ...settings,
    name: spec.name,
    upstreams: spec.upstreams,
    ...(spec.proxyProtocol === undefined ? {} : { proxyProtocol: spec.proxyProtocol }),
    ...(discovery === NO_DISCOVERY ? {} : { discovery }),
  };
}

function copySetting<K extends keyof PoolSettings>(target: PoolSettings, key: K, value: PoolSettings[K]): void {
  target[key] = value;
}
