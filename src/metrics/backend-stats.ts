// One consistent read of every backend's row in the shared table (Atomics loads, no worker round
// trip), joined with the merged latency histograms: what /metrics, /api/backends and the status
// page all show, so they never disagree on a name or a derivation.

import { currentEwmaUs } from '../balancer/ewma.js';
import type { Backend } from '../model/upstream.js';
import { Admin, C, Health, WEIGHT_SCALE, WS_CLOSE_CODES, WS_CLOSERS, ageOf, wsCloseCell } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';
import { EMPTY_SUMMARY, type SlotLatencySummary } from './latency-merge.js';

export type HealthName = 'unknown' | 'healthy' | 'unhealthy';
export type AdminName = 'enabled' | 'draining' | 'disabled';
/**
 * One word for operators, first match wins: disabled, draining (operator), off (weight 0),
 * down (failed active checks), ejected (outlier detection), up (takes traffic).
 */
export type StateName = 'disabled' | 'draining' | 'off' | 'down' | 'ejected' | 'up';

export const CODE_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export const ERROR_KINDS = ['connect', 'timeout', 'reset', 'protocol'] as const;
export type CodeClass = (typeof CODE_CLASSES)[number];
export type ErrorKind = (typeof ERROR_KINDS)[number];

const CODE_COLUMNS = [C.RESP_1XX, C.RESP_2XX, C.RESP_3XX, C.RESP_4XX, C.RESP_5XX];
const ERROR_COLUMNS = [C.ERR_CONNECT, C.ERR_TIMEOUT, C.ERR_RESET, C.ERR_PROTOCOL];

export interface BackendStats {
  slot: number;
  /** "host:port", the `backend` label and the admin API's id. */
  id: string;
  url: string;
  /** The pool it belongs to: the `pool` label (the same address in two pools is two backends). */
  pool: string;
  state: StateName;
  /** Whether the balancer may pick it now (the same test as SharedTable.available). */
  available: boolean;
  health: HealthName;
  admin: AdminName;
  /** Live weight (operators may have changed it) and the configured one. */
  weight: number;
  configuredWeight: number;
  ejected: boolean;
  /** Milliseconds of ejection left; 0 when not ejected. */
  ejectedForMs: number;
  ejections: number;
  inFlight: number;
  openConnections: number;
  /** Peak-EWMA latency now (decayed since its last sample); null before the first sample. */
  ewmaMs: number | null;
  /** Requests started (counted when a backend is picked, so includes those still in flight). */
  requests: number;
  responses: Record<CodeClass, number>;
  errors: Record<ErrorKind, number>;
  retries: number;
  /** Proxied WebSockets: open now, and messages and payload bytes relayed each way. */
  websockets: WebSocketStats;
  latency: SlotLatencySummary;
}

export interface WebSocketStats {
  open: number;
  messagesToBackend: number;
  messagesToClient: number;
  bytesToBackend: number;
  bytesToClient: number;
}

/** WebSocket closes by who ended them and code (a code not listed counts as "other"). */
export interface WebSocketCloseCount {
  by: (typeof WS_CLOSERS)[number];
  code: string;
  count: number;
}

/** Every close counter, zeros included (a Prometheus series should exist before its first close). */
export function collectWebSocketCloses(table: SharedTable): WebSocketCloseCount[] {
  const out: WebSocketCloseCount[] = [];
  WS_CLOSERS.forEach((by, closer) => {
    for (const code of WS_CLOSE_CODES) out.push({ by, code: String(code), count: Atomics.load(table.words, wsCloseCell(closer, code)) });
    out.push({ by, code: 'other', count: Atomics.load(table.words, wsCloseCell(closer, 0)) });
  });
  return out;
}

const NO_LATENCY: SlotLatencySummary = Object.freeze({ total: EMPTY_SUMMARY, upstream: EMPTY_SUMMARY });

export function collectBackendStats(
  table: SharedTable,
  backends: readonly Backend[],
  latency: ReadonlyMap<number, SlotLatencySummary>,
  /** One decay for all, or each pool's own (pools may set ewma.decay_ms). */
  ewmaDecayMs: number | ((pool: string) => number),
): BackendStats[] {
  const now = table.now();
  const decayOf = typeof ewmaDecayMs === 'number' ? () => ewmaDecayMs : ewmaDecayMs;
  return backends.map((b) => {
    const slot = b.slot;
    const health = healthName(table.get(C.HEALTH, slot));
    const admin = adminName(table.get(C.ADMIN, slot));
    const weightScaled = table.get(C.WEIGHT, slot);
    // ms until the ejection ends (a time stamp: see layout.ts, "Time"); <= 0 when not ejected.
    const ejectedFor = -ageOf(table.get(C.EJECTED_UNTIL, slot), now);
    const ejected = ejectedFor > 0;
    const available = table.available(slot, now);
    const ewmaUs = currentEwmaUs(table, slot, now, decayOf(b.pool), -1);
    const responses = {} as Record<CodeClass, number>;
    CODE_CLASSES.forEach((name, i) => (responses[name] = table.get(CODE_COLUMNS[i]!, slot)));
    const errors = {} as Record<ErrorKind, number>;
    ERROR_KINDS.forEach((name, i) => (errors[name] = table.get(ERROR_COLUMNS[i]!, slot)));
    return {
      slot,
      id: b.id,
      url: b.upstream.url,
      pool: b.pool,
      state: stateName(admin, weightScaled, health, ejected),
      available,
      health,
      admin,
      weight: weightScaled / WEIGHT_SCALE,
      configuredWeight: b.weight,
      ejected,
      ejectedForMs: ejected ? ejectedFor : 0,
      ejections: table.get(C.EJECTIONS, slot),
      inFlight: table.get(C.IN_FLIGHT, slot),
      openConnections: table.get(C.OPEN_CONNS, slot),
      ewmaMs: ewmaUs < 0 ? null : ewmaUs / 1000,
      requests: table.get(C.REQUESTS, slot),
      responses,
      errors,
      retries: table.get(C.RETRIES, slot),
      websockets: {
        open: table.get(C.WS_OPEN, slot),
        messagesToBackend: table.get(C.WS_MSGS_UP, slot),
        messagesToClient: table.get(C.WS_MSGS_DOWN, slot),
        bytesToBackend: table.wsBytes(C.WS_BYTES_UP_LO, slot),
        bytesToClient: table.wsBytes(C.WS_BYTES_DOWN_LO, slot),
      },
      latency: latency.get(slot) ?? NO_LATENCY,
    };
  });
}

function healthName(v: number): HealthName {
  return v === Health.HEALTHY ? 'healthy' : v === Health.UNHEALTHY ? 'unhealthy' : 'unknown';
}

function adminName(v: number): AdminName {
  return v === Admin.DRAINING ? 'draining' : v === Admin.DISABLED ? 'disabled' : 'enabled';
}

function stateName(admin: AdminName, weightScaled: number, health: HealthName, ejected: boolean): StateName {
  if (admin !== 'enabled') return admin;
  if (weightScaled <= 0) return 'off';
  if (health === 'unhealthy') return 'down';
  return ejected ? 'ejected' : 'up';
}
