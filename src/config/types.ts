// The validated configuration every other module reads. Built once at start (and on reload) from
// SLUICE_* environment variables by env.ts; plain data so it can be posted to worker threads.

export type BalancerName =
  | 'round-robin'
  | 'weighted-round-robin'
  | 'random'
  | 'weighted-random'
  | 'least-request'
  | 'peak-ewma'
  | 'least-conn'
  | 'ring-hash'
  | 'maglev';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Upstream {
  /** As written by the user, normalised: "http://host:port". */
  readonly url: string;
  readonly protocol: 'http:' | 'https:';
  readonly host: string;
  readonly port: number;
  /** Relative weight, > 0. */
  readonly weight: number;
}

/** How hashing policies find the affinity key. */
export type HashKey = { kind: 'header'; name: string } | { kind: 'cookie'; name: string } | { kind: 'ip' };

export interface Config {
  listen: { host: string; port: number };
  /** Empty means: start the embedded demo pool. */
  upstreams: Upstream[];
  workers: number;
  balancer: BalancerName;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  maxHeaderBytes: number;
  /** Request bodies larger than this get 413 (0 = no limit; bodies stream, so memory stays bounded). */
  maxBodyBytes: number;
  /** Pooled keep-alive connections per backend per worker. */
  upstreamConnections: number;
  drainTimeoutMs: number;
  logLevel: LogLevel;
  /** Client addresses (exact IPs) whose X-Forwarded-* headers are trusted and extended. */
  trustedProxies: string[];
  /** Balancing knobs (the balancing issue reads these). */
  leastRequestBias: number;
  ewmaDecayMs: number;
  ewmaDefaultRttMs: number;
  panicThresholdPercent: number;
  slowStartMs: number;
  hashKey: HashKey;
  maglevTableSize: number;
}
