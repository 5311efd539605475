// The validated configuration every other module reads. Built once at start (and on reload) from
// SLUICE_* environment variables by env.ts; plain data so it can be posted to worker threads.

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

/** Inclusive range of HTTP statuses a health check accepts: "2xx" is 200..299, "204" is 204..204. */
export interface StatusRange {
  readonly from: number;
  readonly to: number;
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
  /** Access log sample rate: 0 = off, 1 = every request, in between = that fraction of requests. */
  accessLog: number;
  /** Admin listener (metrics, API, status page); null = off. */
  adminListen: { host: string; port: number } | null;
  /** Bearer token every admin call needs; '' = none (only allowed on a loopback admin listener). */
  adminToken: string;
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
  /** TLS termination (src/tls): a second listener; null = none. Paths '' = not set. */
  tlsListen: { host: string; port: number } | null;
  tlsCert: string;
  tlsKey: string;
  tlsKeyPassphrase: string;
  tlsCertsDir: string;
  tlsCiphers: string;
  /** Plain listener answers 308 to https:// (needs tlsListen). */
  redirectHttps: boolean;
  /** Strict-Transport-Security max-age on TLS responses, seconds; 0 = no header. */
  hstsMaxAge: number;
  /** https:// upstreams: PEM CA bundle replacing the system roots ('' = system roots), or no verification. */
  upstreamCa: string;
  upstreamInsecure: boolean;
  /** Active health checks (src/health): HTTP GET of healthPath when it is set, else TCP connect. */
  healthCheck: 'on' | 'off';
  /** '' = TCP connect checks. */
  healthPath: string;
  /** Statuses an HTTP check accepts. */
  healthExpect: StatusRange[];
  healthIntervalMs: number;
  healthTimeoutMs: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  /** Passive outlier detection; 0 turns a trigger off. */
  outlierConsecutive5xx: number;
  outlierConsecutiveFailures: number;
  outlierBaseEjectionMs: number;
  outlierMaxEjectionMs: number;
  /** 0 = never eject. */
  outlierMaxEjectionPercent: number;
  /** Retries and circuit breaking (the data path reads these). */
  retries: number;
  retryBudgetPercent: number;
  /** In-flight cap per backend across all workers; 0 = no cap. */
  maxRequestsPerBackend: number;
  /** Absolute path of the env file SIGHUP re-reads; '' = none. */
  envFile: string;
}
