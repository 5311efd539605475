// The one table of SLUICE_* environment variables: name, default, meaning and parser of each.
// env.ts applies it, `sluice --help` prints it, docs/configuration.md mirrors it (a test checks).
// Keyed by Config field so the compiler rejects a Config field without a variable, or the reverse.

import { availableParallelism } from 'node:os';
import { CAPACITY, MAX_WORKERS } from '../state/layout.js';
import type { BalancerName, Config, LogLevel } from './types.js';
import { decimal, integer, keywordOr, listOf, oneOf, prime, type Parser } from './parsers.js';
import { hashKey, ipAddress, listenAddress, upstream } from './value-parsers.js';

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
}

export type AnyVariableSpec = { [K in keyof Config]: VariableSpec<K> }[keyof Config];

export const BALANCERS: readonly BalancerName[] = [
  'round-robin',
  'weighted-round-robin',
  'random',
  'weighted-random',
  'least-request',
  'peak-ewma',
  'least-conn',
  'ring-hash',
  'maglev',
];

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
    doc: 'Address for client traffic: host:port, [ipv6]:port, or :port for every IPv4 address.',
    parse: listenAddress,
  },
  upstreams: {
    name: 'SLUICE_UPSTREAMS',
    key: 'upstreams',
    default: '',
    doc:
      'Comma-separated backend URLs, http://host[:port] or https://host[:port], each optionally ' +
      `?weight=N (N > 0, up to 1000, default 1). At most ${CAPACITY}. Empty starts the built-in demo pool.`,
    // The shared table has CAPACITY slots; more backends could not be tracked.
    parse: listOf(upstream, { max: CAPACITY, identity: (u) => u.url }),
  },
  workers: {
    name: 'SLUICE_WORKERS',
    key: 'workers',
    default: 'auto',
    doc: `Worker threads serving traffic, 1 to ${MAX_WORKERS}; auto = available CPUs, at most ${MAX_WORKERS}.`,
    // MAX_WORKERS bounds the per-worker counters in the shared table (state/layout.ts).
    parse: keywordOr('auto', () => Math.min(availableParallelism(), MAX_WORKERS), integer(1, MAX_WORKERS)),
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
  trustedProxies: {
    name: 'SLUICE_TRUSTED_PROXIES',
    key: 'trustedProxies',
    default: '',
    doc: 'Comma-separated IP addresses of proxies in front of Sluice whose X-Forwarded-* headers are trusted and extended.',
    // Same bound as upstreams: a list longer than that is a mistake, not a deployment.
    parse: listOf(ipAddress, { max: CAPACITY }),
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
    doc: 'peak-ewma: time constant in milliseconds over which old latency samples fade.',
    parse: positiveMs,
  },
  ewmaDefaultRttMs: {
    name: 'SLUICE_EWMA_DEFAULT_RTT_MS',
    key: 'ewmaDefaultRttMs',
    default: '30',
    doc: 'peak-ewma: latency in milliseconds assumed for a backend with no samples yet (> 0, decimals allowed).',
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
};

/** Every variable, in documentation order. */
export const VARIABLE_SPECS: readonly AnyVariableSpec[] = Object.values(VARIABLES);

export const VARIABLE_NAMES: ReadonlySet<string> = new Set(VARIABLE_SPECS.map((spec) => spec.name));
