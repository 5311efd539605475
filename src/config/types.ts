// The validated configuration every other module reads. Built once at start (and on reload) from
// SLUICE_* environment variables by env.ts, then completed with the pools and routes of the config
// file (SLUICE_CONFIG) by load.ts; plain data so it can be posted to worker threads.

import type { BalancerName, HashKey, PoolConfig, PoolSettings, StatusRange } from '../model/pool.js';
import type { RouteSpec } from '../model/route.js';
import type { Upstream } from '../model/upstream.js';
import type { L4ListenerSpec } from '../model/listener.js';
import type { AcceptProxy, L4Binding } from './l4-parsers.js';

export type WsCompression = 'off' | 'shared' | 'dedicated';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

// The domain types live in src/model (which imports nothing of ours); re-exported for importers here.
export type { Upstream } from '../model/upstream.js';
export type { BalancerName, HashKey, StatusRange } from '../model/pool.js';

/**
 * Global settings and the pool defaults. Extending PoolSettings makes the compiler hold every
 * pool-level field here to the pool's type: each is the default a pool may override.
 */
export interface Config extends PoolSettings {
  /** The plain HTTP listener; null: none (SLUICE_LISTEN=off). */
  listen: { host: string; port: number } | null;
  /** The pool "default". Empty (and no config file) means: start the embedded demo pool. */
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
  /** Resolvers for dns discovery sources ("ip[:port]"); empty: the system's (/etc/resolv.conf). */
  dnsServers: string[];
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
  /** Upstream HTTP/1.1 pipelining depth for bodiless GET/HEAD; 1 = off (docs/performance.md). */
  upstreamPipeline: number;
  /** How long a pipelined request may wait behind the response ahead of it before it goes again elsewhere. */
  upstreamPipelineHolMs: number;
  /** WebSockets (src/ws): bytes queued toward one side before Sluice stops reading the other. */
  wsMaxBufferBytes: number;
  /** Largest WebSocket message either way; larger closes with 1009. */
  wsMaxMessageBytes: number;
  /** Silence after which a side is pinged (half of it) and closed (all of it); 0 = off. */
  wsIdleTimeoutMs: number;
  /** permessage-deflate towards clients: off, shared (no per-socket window) or dedicated (32 KiB window). */
  wsCompression: WsCompression;
  /** L4 listeners declared in the environment (docs/l4.md); the file's `listeners:` add to them. */
  tcpListen: L4Binding[];
  udpListen: L4Binding[];
  /** The env-declared TCP listeners expect a PROXY header (accept_proxy_protocol of file listeners). */
  tcpAcceptProxy: boolean;
  /** Threads the L4 listeners are spread over. */
  l4Threads: number;
  /** Each L4 thread's V8 young generation cap (resourceLimits.maxYoungGenerationSizeMb); 0 = V8's default. */
  l4YoungGenerationMb: number;
  /** HTTP listeners that take the client address from a PROXY v2 header (and require one). */
  acceptProxyProtocol: AcceptProxy;
  /** Absolute path of the env file SIGHUP re-reads; '' = none. */
  envFile: string;
  /** Absolute path of the config file (pools and routes); '' = none. */
  configFile: string;
}

/** Config plus the resolved pools and the routes: what start-up, --check and reload produce. */
export interface ResolvedConfig extends Config {
  /** Every setting resolved. Always holds "default" when SLUICE_UPSTREAMS is set or no file is. */
  readonly pools: PoolConfig[];
  /** In file order, names unique; compile with compileRoutes (src/model). */
  readonly routes: RouteSpec[];
  /** L4 listeners: SLUICE_TCP_LISTEN, SLUICE_UDP_LISTEN, then the file's listeners (l4-check.ts). */
  readonly listeners: L4ListenerSpec[];
}
