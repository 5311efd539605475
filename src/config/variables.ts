// The one table of SLUICE_* environment variables: name, default, meaning and parser of each.
// env.ts applies it, `sluice --help` prints it, docs/configuration.md mirrors it (a test checks).
// Keyed by Config field so the compiler rejects a Config field without a variable, or the reverse.

import { availableParallelism } from 'node:os';
import { CAPACITY, MAX_SERVING_WORKERS } from '../model/limits.js';
import type { BalancerName, Config, LogLevel, WsCompression } from './types.js';
import { decimal, integer, keywordOr, listOf, oneOf, prime, type Parser } from './parsers.js';
import { dnsServer, hashKey, ipAddress, listenAddress, upstream } from './value-parsers.js';
import { envFilePath, healthPath, statusRanges } from './health-parsers.js';
import { cipherList, filePath, flag, optionalListenAddress, secret } from './tls-parsers.js';
import { DEFAULT_CIPHERS } from './ciphers.js';
import { accessLogRate, adminExposureIssue, adminListen, adminToken } from './admin-parsers.js';
import type { Issue } from './parsers.js';
import { acceptProxy, l4Binding } from './l4-parsers.js';

export interface VariableSpec<K extends keyof Config> {
  readonly name: `SLUICE_${string}`;
  readonly key: K;
  /**
   * Written in the variable's own syntax and run through `parse` like user input, so the default
   * that is documented is the default that applies. '' means empty (for lists: no items).
   */
  readonly default: string;
  /** One or two sentences for --help and the docs. */
  readonly doc: string;
  readonly parse: Parser<Config[K]>;
  /** A secret: never shown back (status API, logs). */
  readonly secret?: boolean;
}

export type AnyVariableSpec = { [K in keyof Config]: VariableSpec<K> }[keyof Config];

export const BALANCERS: readonly BalancerName[] = [
  'round-robin',
  'weighted-round-robin',
  'random',
  'weighted-random',
  'least-request',
  'peak-ewma',
  'peak-ewma-classic',
  'least-conn',
  'ring-hash',
  'maglev',
];

export const WS_COMPRESSIONS: readonly WsCompression[] = ['off', 'shared', 'dedicated'];

export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** One hour: longer than any sane timeout, short enough that a unit mix-up (seconds vs ms) shows. */
const MAX_MS = 3_600_000;
const positiveMs = integer(1, MAX_MS);
const zeroOrMoreMs = integer(0, MAX_MS);

const VARIABLES: { readonly [K in keyof Config]: VariableSpec<K> } = {
  listen: {
    name: 'SLUICE_LISTEN',
    key: 'listen',
    default: '0.0.0.0:8080',
    doc:
      'Address for client traffic: host:port, [ipv6]:port, or :port for every IPv4 address. off: no plain HTTP listener ' +
      '(a TLS-only or L4-only Sluice); with no SLUICE_TLS_LISTEN either, no HTTP worker starts.',
    parse: keywordOr<{ host: string; port: number } | null>('off', () => null, listenAddress),
  },
  upstreams: {
    name: 'SLUICE_UPSTREAMS',
    key: 'upstreams',
    default: '',
    doc:
      'Comma-separated backend URLs, http://host[:port] or https://host[:port] (L4: tcp://host:port, udp://host:port), each optionally ' +
      `?weight=N (N > 0, up to 1000, default 1). At most ${CAPACITY}. Empty starts the built-in demo pool.`,
    // The shared table has CAPACITY slots; more backends could not be tracked.
    parse: listOf(upstream, { max: CAPACITY, identity: (u) => u.url }),
  },
  workers: {
    name: 'SLUICE_WORKERS',
    key: 'workers',
    default: 'auto',
    doc: `Worker threads serving traffic, 1 to ${MAX_SERVING_WORKERS}; auto = available CPUs, at most ${MAX_SERVING_WORKERS}.`,
    // Bounded by the per-worker counters in the shared table (state/layout.ts), less the spare.
    parse: keywordOr('auto', () => Math.min(availableParallelism(), MAX_SERVING_WORKERS), integer(1, MAX_SERVING_WORKERS)),
  },
  balancer: {
    name: 'SLUICE_BALANCER',
    key: 'balancer',
    default: 'peak-ewma',
    doc: `Load-balancing policy: ${BALANCERS.join(', ')}.`,
    parse: oneOf(BALANCERS),
  },
  connectTimeoutMs: {
    name: 'SLUICE_CONNECT_TIMEOUT_MS',
    key: 'connectTimeoutMs',
    default: '5000',
    doc: 'Milliseconds to open a connection to a backend before giving up on it.',
    parse: positiveMs,
  },
  requestTimeoutMs: {
    name: 'SLUICE_REQUEST_TIMEOUT_MS',
    key: 'requestTimeoutMs',
    default: '15000',
    doc: "Milliseconds from sending a request to the backend's first response byte; past it the client gets 504.",
    parse: positiveMs,
  },
  idleTimeoutMs: {
    name: 'SLUICE_IDLE_TIMEOUT_MS',
    key: 'idleTimeoutMs',
    default: '10000',
    doc: 'Milliseconds an idle keep-alive connection (client or backend) is kept open.',
    parse: positiveMs,
  },
  maxHeaderBytes: {
    name: 'SLUICE_MAX_HEADER_BYTES',
    key: 'maxHeaderBytes',
    default: '16384',
    doc: 'Largest request head (request line and headers) accepted, 1024 to 1048576 bytes.',
    parse: integer(1024, 1_048_576),
  },
  maxBodyBytes: {
    name: 'SLUICE_MAX_BODY_BYTES',
    key: 'maxBodyBytes',
    default: '0',
    doc: 'Largest request body accepted; larger gets 413. 0 = no limit (bodies stream, memory stays bounded).',
    parse: integer(0),
  },
  upstreamConnections: {
    name: 'SLUICE_UPSTREAM_CONNECTIONS',
    key: 'upstreamConnections',
    default: '128',
    doc: 'Keep-alive connections pooled per backend in each worker, 1 to 65536.',
    parse: integer(1, 65_536),
  },
  drainTimeoutMs: {
    name: 'SLUICE_DRAIN_TIMEOUT_MS',
    key: 'drainTimeoutMs',
    default: '30000',
    doc: 'On SIGTERM, milliseconds to let in-flight requests finish before closing; 0 closes at once.',
    parse: zeroOrMoreMs,
  },
  logLevel: {
    name: 'SLUICE_LOG_LEVEL',
    key: 'logLevel',
    default: 'info',
    doc: `Log level: ${LOG_LEVELS.join(', ')}.`,
    parse: oneOf(LOG_LEVELS),
  },
  accessLog: {
    name: 'SLUICE_ACCESS_LOG',
    key: 'accessLog',
    default: 'off',
    doc: 'Access log: off, on, or the fraction of requests logged (0 to 1, such as 0.01), written asynchronously.',
    parse: accessLogRate,
  },
  adminListen: {
    name: 'SLUICE_ADMIN_LISTEN',
    key: 'adminListen',
    default: '127.0.0.1:9901',
    doc: 'Admin listener (metrics, JSON API, status page): host:port, or off. Not loopback requires SLUICE_ADMIN_TOKEN.',
    parse: adminListen,
  },
  adminToken: {
    name: 'SLUICE_ADMIN_TOKEN',
    key: 'adminToken',
    default: '',
    doc: 'Bearer token every admin call must carry (Authorization: Bearer <token>), at least 16 characters; empty means none.',
    parse: adminToken,
    secret: true,
  },
  trustedProxies: {
    name: 'SLUICE_TRUSTED_PROXIES',
    key: 'trustedProxies',
    default: '',
    doc: 'Comma-separated IP addresses of proxies in front of Sluice whose X-Forwarded-* headers are trusted and extended.',
    // Same bound as upstreams: a list longer than that is a mistake, not a deployment.
    parse: listOf(ipAddress, { max: CAPACITY }),
  },
  dnsServers: {
    name: 'SLUICE_DNS_SERVERS',
    key: 'dnsServers',
    default: '',
    doc: 'Comma-separated DNS resolvers (IP or IP:port, IPv6 as [addr]:port) for pools with a dns: discovery source; empty: the system resolvers. Restart to change.',
    // A handful of resolvers is what anyone configures; node:dns tries them in order.
    parse: listOf(dnsServer, { max: 16 }),
  },
  leastRequestBias: {
    name: 'SLUICE_LEAST_REQUEST_BIAS',
    key: 'leastRequestBias',
    default: '1',
    doc: 'least-request: exponent on in-flight requests when weights differ (Envoy active_request_bias), 0 to 100.',
    // Bounded so weight / (in-flight + 1) ^ bias stays a finite, comparable number.
    parse: decimal(0, 100),
  },
  ewmaDecayMs: {
    name: 'SLUICE_EWMA_DECAY_MS',
    key: 'ewmaDecayMs',
    default: '10000',
    doc: 'peak-ewma-classic: time constant in milliseconds over which old latency samples fade.',
    parse: positiveMs,
  },
  ewmaDefaultRttMs: {
    name: 'SLUICE_EWMA_DEFAULT_RTT_MS',
    key: 'ewmaDefaultRttMs',
    default: '30',
    doc: 'peak-ewma, peak-ewma-classic: latency in milliseconds assumed for a backend with no samples yet (> 0, decimals allowed).',
    parse: decimal(0, MAX_MS, true),
  },
  panicThresholdPercent: {
    name: 'SLUICE_PANIC_THRESHOLD_PERCENT',
    key: 'panicThresholdPercent',
    default: '50',
    doc: 'When fewer than this percent of backends are healthy, balance across all of them (0 disables).',
    parse: decimal(0, 100),
  },
  slowStartMs: {
    name: 'SLUICE_SLOW_START_MS',
    key: 'slowStartMs',
    default: '0',
    doc: 'Milliseconds over which a new or recovered backend ramps up to its full weight; 0 disables.',
    parse: zeroOrMoreMs,
  },
  hashKey: {
    name: 'SLUICE_HASH_KEY',
    key: 'hashKey',
    default: 'ip',
    doc: 'ring-hash and maglev: what a request is hashed on: ip (client address), header:<name> or cookie:<name>.',
    parse: hashKey,
  },
  maglevTableSize: {
    name: 'SLUICE_MAGLEV_TABLE_SIZE',
    key: 'maglevTableSize',
    default: '65537',
    doc: 'maglev: lookup table size, a prime from 7 to 1000003, much larger than the backend count.',
    // Prime so every backend's permutation visits every entry (Maglev, NSDI 2016).
    parse: prime(7, 1_000_003),
  },
  tlsListen: {
    name: 'SLUICE_TLS_LISTEN',
    key: 'tlsListen',
    default: '',
    doc: 'Address for TLS client traffic (HTTPS), in the syntax of SLUICE_LISTEN; empty = no TLS listener. Needs SLUICE_TLS_CERT and SLUICE_TLS_KEY.',
    parse: optionalListenAddress,
  },
  tlsCert: {
    name: 'SLUICE_TLS_CERT',
    key: 'tlsCert',
    default: '',
    doc: 'PEM certificate (chain) served to clients that send no server name or one no other certificate covers.',
    parse: filePath,
  },
  tlsKey: {
    name: 'SLUICE_TLS_KEY',
    key: 'tlsKey',
    default: '',
    doc: 'PEM private key of SLUICE_TLS_CERT.',
    parse: filePath,
  },
  tlsKeyPassphrase: {
    name: 'SLUICE_TLS_KEY_PASSPHRASE',
    key: 'tlsKeyPassphrase',
    default: '',
    doc: 'Passphrase of encrypted TLS keys (the default key and those in SLUICE_TLS_CERTS_DIR).',
    parse: secret,
  },
  tlsCertsDir: {
    name: 'SLUICE_TLS_CERTS_DIR',
    key: 'tlsCertsDir',
    default: '',
    doc: 'Directory of NAME.crt (or NAME.pem) + NAME.key pairs, each served (SNI) for the DNS names in its subjectAltName, wildcards included, else its CN.',
    parse: filePath,
  },
  tlsCiphers: {
    name: 'SLUICE_TLS_CIPHERS',
    key: 'tlsCiphers',
    default: 'modern',
    doc: 'OpenSSL cipher list for TLS 1.2; modern = ECDHE with AES-GCM or ChaCha20-Poly1305 only. TLS 1.3 suites are fixed; TLS 1.1 and older are refused.',
    parse: keywordOr('modern', () => DEFAULT_CIPHERS, cipherList),
  },
  redirectHttps: {
    name: 'SLUICE_REDIRECT_HTTPS',
    key: 'redirectHttps',
    default: '0',
    doc: 'When 1, the plain listener answers every request with 308 to the same host and path on the TLS listener.',
    parse: flag,
  },
  hstsMaxAge: {
    name: 'SLUICE_HSTS_MAX_AGE',
    key: 'hstsMaxAge',
    default: '0',
    doc: 'Seconds of Strict-Transport-Security max-age sent on TLS responses; 0 sends no header.',
    // Two years is what browsers' preload lists ask for; ten leaves room without allowing nonsense.
    parse: integer(0, 315_360_000),
  },
  upstreamCa: {
    name: 'SLUICE_UPSTREAM_CA',
    key: 'upstreamCa',
    default: '',
    doc: 'PEM file of CA certificates trusted for https:// upstreams, instead of the system roots.',
    parse: filePath,
  },
  upstreamInsecure: {
    name: 'SLUICE_UPSTREAM_INSECURE',
    key: 'upstreamInsecure',
    default: '0',
    doc: 'When 1, https:// upstream certificates are not verified (logged as a warning at start). Testing only.',
    parse: flag,
  },
  healthCheck: {
    name: 'SLUICE_HEALTH_CHECK',
    key: 'healthCheck',
    default: 'on',
    doc:
      'Active health checks from the control plane: on (HTTP GET of SLUICE_HEALTH_PATH when set, else a TCP ' +
      'connect) or off. When on, a new backend gets traffic only after its first passing check.',
    parse: oneOf(['on', 'off'] as const),
  },
  healthPath: {
    name: 'SLUICE_HEALTH_PATH',
    key: 'healthPath',
    default: '',
    doc: 'Path (and query) an HTTP health check requests, such as /healthz; empty means TCP connect checks.',
    parse: healthPath,
  },
  healthExpect: {
    name: 'SLUICE_HEALTH_EXPECT',
    key: 'healthExpect',
    default: '2xx',
    doc: 'Statuses an HTTP health check accepts: comma-separated codes and classes, such as 200,204 or 2xx,301.',
    parse: statusRanges,
  },
  healthIntervalMs: {
    name: 'SLUICE_HEALTH_INTERVAL_MS',
    key: 'healthIntervalMs',
    default: '2000',
    doc: 'Milliseconds between health checks of one backend, jittered by ±10%; 10 to 3600000.',
    // Below 10 ms a check would be a load test of the backend, not a health check.
    parse: integer(10, MAX_MS),
  },
  healthTimeoutMs: {
    name: 'SLUICE_HEALTH_TIMEOUT_MS',
    key: 'healthTimeoutMs',
    default: '1000',
    doc: 'Milliseconds a health check may take (connect, and for HTTP the response status) before it fails.',
    parse: positiveMs,
  },
  healthyThreshold: {
    name: 'SLUICE_HEALTHY_THRESHOLD',
    key: 'healthyThreshold',
    default: '2',
    doc: 'Consecutive passing checks that bring an unhealthy backend back, 1 to 100.',
    parse: integer(1, 100),
  },
  unhealthyThreshold: {
    name: 'SLUICE_UNHEALTHY_THRESHOLD',
    key: 'unhealthyThreshold',
    default: '3',
    doc: 'Consecutive failed checks that take a healthy backend out of rotation, 1 to 100.',
    parse: integer(1, 100),
  },
  outlierConsecutive5xx: {
    name: 'SLUICE_OUTLIER_CONSECUTIVE_5XX',
    key: 'outlierConsecutive5xx',
    default: '5',
    doc: 'Consecutive 5xx responses from a backend (seen by any worker) that eject it; 0 disables.',
    parse: integer(0, 1_000_000),
  },
  outlierConsecutiveFailures: {
    name: 'SLUICE_OUTLIER_CONSECUTIVE_FAILURES',
    key: 'outlierConsecutiveFailures',
    default: '5',
    doc: 'Consecutive connect failures to a backend that eject it; 0 disables.',
    parse: integer(0, 1_000_000),
  },
  outlierBaseEjectionMs: {
    name: 'SLUICE_OUTLIER_BASE_EJECTION_MS',
    key: 'outlierBaseEjectionMs',
    default: '30000',
    doc: 'An ejection lasts this many milliseconds times the number of recent ejections of that backend.',
    parse: positiveMs,
  },
  outlierMaxEjectionMs: {
    name: 'SLUICE_OUTLIER_MAX_EJECTION_MS',
    key: 'outlierMaxEjectionMs',
    default: '300000',
    doc: 'Longest ejection in milliseconds; a backend not ejected for this long starts again from the base.',
    parse: positiveMs,
  },
  outlierMaxEjectionPercent: {
    name: 'SLUICE_OUTLIER_MAX_EJECTION_PERCENT',
    key: 'outlierMaxEjectionPercent',
    default: '10',
    doc: 'Most of the pool ejected at once, in percent, but always at least one backend; 0 disables ejection.',
    parse: decimal(0, 100),
  },
  retries: {
    name: 'SLUICE_RETRIES',
    key: 'retries',
    default: '1',
    doc: 'Retries of an idempotent request after a connect failure or reset before any response byte, to another backend; 0 to 10.',
    parse: integer(0, 10),
  },
  retryBudgetPercent: {
    name: 'SLUICE_RETRY_BUDGET_PERCENT',
    key: 'retryBudgetPercent',
    default: '20',
    doc: 'Retry budget: retries may be at most this percent of requests (each request adds a fraction of a retry token), plus 3 a second per worker always, so retries cannot storm.',
    parse: decimal(0, 100),
  },
  maxRequestsPerBackend: {
    name: 'SLUICE_MAX_REQUESTS_PER_BACKEND',
    key: 'maxRequestsPerBackend',
    default: '0',
    doc: 'Circuit breaker: requests in flight to one backend, all workers together, before it is passed over (503 when all are full); 0 = no cap.',
    parse: integer(0, 1_000_000),
  },
  upstreamPipeline: {
    name: 'SLUICE_UPSTREAM_PIPELINE',
    key: 'upstreamPipeline',
    default: '16',
    doc:
      'HTTP/1.1 pipelining to backends: bodiless GET/HEAD requests parsed in the same loop turn may share one kept-alive backend ' +
      'connection, up to this many at once, written in one system call; 1 = off. Guarded: a request that waits behind a slow ' +
      'response longer than SLUICE_UPSTREAM_PIPELINE_HOL_MS goes again on another connection, and a backend that is slow or ' +
      'drops a pipelined connection gets no pipelining for a while (docs/performance.md). 1 to 64.',
    parse: integer(1, 64),
  },
  upstreamPipelineHolMs: {
    name: 'SLUICE_UPSTREAM_PIPELINE_HOL_MS',
    key: 'upstreamPipelineHolMs',
    default: '20',
    doc:
      'Pipelining head-of-line bound: a pipelined GET/HEAD still waiting after this long behind the response ahead of it is sent ' +
      'again on another connection (the old one closes once the response ahead is done), and pipelining to that backend pauses (10 s, doubling ' +
      'per incident to 10 min). 1 to 60000.',
    parse: integer(1, 60_000),
  },
  wsMaxBufferBytes: {
    name: 'SLUICE_WS_MAX_BUFFER_BYTES',
    key: 'wsMaxBufferBytes',
    default: '4194304',
    doc:
      'WebSockets: bytes queued toward a slow client before Sluice stops reading its backend, and toward a slow backend ' +
      'before the client is closed with 1013 (this uWS build cannot pause a WebSocket); 16384 to 1073741824.',
    parse: integer(16_384, 1_073_741_824),
  },
  wsMaxMessageBytes: {
    name: 'SLUICE_WS_MAX_MESSAGE_BYTES',
    key: 'wsMaxMessageBytes',
    default: '1048576',
    doc: 'WebSockets: largest message either way (fragments reassembled); a larger one closes both sides with 1009 (one frame over 64 KiB beyond it is cut by uWS at once: that client sees the connection drop). 125 to 268435456.',
    parse: integer(125, 268_435_456),
  },
  wsIdleTimeoutMs: {
    name: 'SLUICE_WS_IDLE_TIMEOUT_MS',
    key: 'wsIdleTimeoutMs',
    default: '60000',
    doc:
      'WebSockets: a side silent for half of this is pinged; silent (not even a pong) for all of it, the WebSocket is ' +
      'closed with 1001 both ways. 0 = never.',
    parse: zeroOrMoreMs,
  },
  wsCompression: {
    name: 'SLUICE_WS_COMPRESSION',
    key: 'wsCompression',
    default: 'off',
    doc:
      'WebSockets: permessage-deflate toward clients that offer it: off; shared (no memory per socket, no context ' +
      'takeover); dedicated (a 32 KiB window per socket, better ratios, about 300 KiB each). Backends are never sent it.',
    parse: oneOf(WS_COMPRESSIONS),
  },
  tcpListen: {
    name: 'SLUICE_TCP_LISTEN',
    key: 'tcpListen',
    default: '',
    doc:
      'L4 TCP listeners: comma-separated host:port=>pool (=>pool left out: the pool "default"), e.g. ' +
      '0.0.0.0:5432=>pg,0.0.0.0:6379=>redis. Bytes are relayed to the pool\'s backends (tcp://host:port upstreams); see docs/l4.md.',
    parse: listOf(l4Binding, { max: 64, identity: (b) => `${b.host}:${b.port}` }),
  },
  udpListen: {
    name: 'SLUICE_UDP_LISTEN',
    key: 'udpListen',
    default: '',
    doc: 'L4 UDP listeners, as SLUICE_TCP_LISTEN: host:port=>pool, comma-separated; a client address sticks to one backend (udp://host:port upstreams) for a session.',
    parse: listOf(l4Binding, { max: 64, identity: (b) => `${b.host}:${b.port}` }),
  },
  tcpAcceptProxy: {
    name: 'SLUICE_TCP_ACCEPT_PROXY_PROTOCOL',
    key: 'tcpAcceptProxy',
    default: '0',
    doc:
      'The SLUICE_TCP_LISTEN listeners expect a PROXY protocol header (v1 or v2) from a front balancer on every connection, take the ' +
      'client address from it, and close connections without one (as accept_proxy_protocol: true on a config-file listener).',
    parse: flag,
  },
  l4Threads: {
    name: 'SLUICE_L4_THREADS',
    key: 'l4Threads',
    default: '1',
    doc: 'Threads that run the L4 listeners, 1 to 16 (listener i runs on thread i mod N); none start without L4 listeners.',
    parse: integer(1, 16),
  },
  l4YoungGenerationMb: {
    name: 'SLUICE_L4_YOUNG_GENERATION_MB',
    key: 'l4YoungGenerationMb',
    default: '4',
    doc:
      'Cap on each L4 thread\'s V8 young generation in MiB, 0 to 64 (0: V8\'s own sizing, which grows it to 48 MiB under connection churn). ' +
      'A connection\'s objects die young, so a small one keeps memory flat at no measured CPU cost; see docs/l4.md, "Memory".',
    parse: integer(0, 64),
  },
  acceptProxyProtocol: {
    name: 'SLUICE_ACCEPT_PROXY_PROTOCOL',
    key: 'acceptProxyProtocol',
    default: '0',
    doc:
      'HTTP listeners expect a PROXY protocol v2 header from a front balancer on every connection and take the client address from it (X-Forwarded-For): ' +
      '1 = both, plain = SLUICE_LISTEN only, tls = SLUICE_TLS_LISTEN only. Where off, such a header is not HTTP and gets 400. L4 listeners: accept_proxy_protocol in the config file, SLUICE_TCP_ACCEPT_PROXY_PROTOCOL for SLUICE_TCP_LISTEN.',
    parse: acceptProxy,
  },
  envFile: {
    name: 'SLUICE_ENV_FILE',
    key: 'envFile',
    default: '',
    doc: 'File of KEY=VALUE lines (systemd EnvironmentFile syntax) read at start and again on SIGHUP; its values win over the environment.',
    parse: envFilePath,
  },
  configFile: {
    name: 'SLUICE_CONFIG',
    key: 'configFile',
    default: '',
    doc:
      'Config file (YAML, or JSON) declaring named pools and routes, validated at start, by --check and on SIGHUP. ' +
      'Environment variables keep setting every global value and pool default; see docs/routing.md.',
    // Same rules as the env file: made absolute at start so a reload finds it again.
    parse: envFilePath,
  },
};

/** The variable that sets a Config field (its parser is what config-file values go through too). */
export function variableFor<K extends keyof Config>(key: K): VariableSpec<K> {
  return VARIABLES[key];
}

/** Every variable, in documentation order. */
export const VARIABLE_SPECS: readonly AnyVariableSpec[] = Object.values(VARIABLES);

export const VARIABLE_NAMES: ReadonlySet<string> = new Set(VARIABLE_SPECS.map((spec) => spec.name));

/**
 * Rules that span variables: the variable to blame and why. They see every value that parsed (a
 * variable that failed is absent) so that one run still reports every problem.
 */
export const CROSS_CHECKS: readonly ((config: Partial<Config>) => { variable: string; issue: Issue } | null)[] = [
  (config) => {
    const issue = adminExposureIssue(config);
    return issue === null ? null : { variable: 'SLUICE_ADMIN_TOKEN', issue };
  },
];
