// The shared peak-EWMA latency per backend (EWMA_US / EWMA_STAMP columns): updated by the data path
// after every response, read by peak-ewma.ts and by metrics.
//
// Finagle's peak EWMA (finagle-core loadbalancer PeakEwma; Linkerd2's tower `PeakEwma`):
//   a sample above the current value replaces it at once (react to trouble within one request);
//   a lower sample blends in:  v ← v·w + sample·(1 − w),  w = exp(−Δt/τ),  Δt = time since the last
//   update, so recovery is judged over τ of wall time, not over a number of requests;
//   a reader sees v·exp(−Δt/τ): an idle backend's cost decays toward 0 so it is eventually probed
//   again instead of being shunned forever for one slow response.
// Finagle writes the decay back on every read; here reads are pure (many workers read, and the
// result must not depend on how often they did), and only recorded samples write.
//
// EWMA_US = 0 means "no sample yet"; samples are stored as at least 1 µs. Time is table ms, so a
// lower sample in the same millisecond as the last update (Δt = 0) has no weight: at high rates the
// estimate moves once per ms, which is what a time-based EWMA asks for anyway. EWMA_STAMP is a time
// stamp (layout.ts, "Time"): Δt is ageOf(stamp, now), and a stamp of 0 (retired) is fully decayed.

import { C, ageOf, cell, toStamp } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';
import { resetService } from './service-time.js';

/** CAS attempts before a sample is dropped: losing that many races means fresher samples just landed. */
const MAX_TRIES = 8;
const MAX_US = 0x7fffffff;

function decayWeight(dt: number, decayMs: number): number {
  if (dt <= 0) return 1;
  if (decayMs <= 0) return 0;
  return Math.exp(-dt / decayMs);
}

/** Move the stamp forward to `now`, never back (another worker may have stamped a later time). */
function advanceStamp(table: SharedTable, slot: number, now: number): void {
  const words = table.words;
  const i = cell(C.EWMA_STAMP, slot);
  const stamp = toStamp(now);
  for (let tries = 0; tries < MAX_TRIES; tries++) {
    const seen = Atomics.load(words, i);
    if (ageOf(seen, now) <= 0 || Atomics.compareExchange(words, i, seen, stamp) === seen) return;
  }
}

/**
 * Fold one response time into the backend's peak EWMA. `now` is table time (ms); `decayMs` is τ.
 * The value and its stamp are two words: a reader may briefly pair a new value with the previous
 * stamp and over-decay it for that one read, which is harmless for balancing.
 */
export function recordLatency(table: SharedTable, slot: number, latencyUs: number, now: number, decayMs: number): void {
  const sample = latencyUs >= MAX_US ? MAX_US : latencyUs > 1 ? Math.round(latencyUs) : 1;
  for (let tries = 0; tries < MAX_TRIES; tries++) {
    const current = table.ewmaUs(slot);
    let next = sample;
    if (current > 0 && sample < current) {
      const w = decayWeight(ageOf(table.ewmaStamp(slot), now), decayMs);
      // Floor, not round: the blend lies in [sample, current), and rounding would pin it at
      // current when frequent samples make each step under 0.5 µs (a backend 10 µs above the
      // others would stay there for good). Floor moves at least 1 µs toward the sample.
      next = Math.floor(current * w + sample * (1 - w));
    }
    if (table.casEwma(slot, current, next)) {
      advanceStamp(table, slot, now);
      return;
    }
  }
}

/**
 * Record a failed request (connect error, reset, 5xx, timeout) as a `penaltyUs` sample. A fast
 * error must never make a backend look fast, or it attracts the traffic it is failing (the
 * Finagle/Linkerd pitfall with quick 503s). Use something at least as large as the request timeout.
 */
export function recordFailure(table: SharedTable, slot: number, now: number, decayMs: number, penaltyUs: number): void {
  recordLatency(table, slot, penaltyUs, now, decayMs);
}

/** The backend's latency estimate at `now`, decayed since its last sample; `defaultUs` when it has none. */
export function currentEwmaUs(table: SharedTable, slot: number, now: number, decayMs: number, defaultUs: number): number {
  const value = table.ewmaUs(slot);
  if (value <= 0) return defaultUs;
  return value * decayWeight(ageOf(table.ewmaStamp(slot), now), decayMs);
}

/**
 * Forget a backend's latency estimate (control plane, on recovery: a passing health check after
 * failures, or an outlier ejection). Its next pick treats it as unsampled instead of judging it by
 * the penalties it collected while down, which would keep it out long after it came back.
 */
export function resetLatency(table: SharedTable, slot: number): void {
  Atomics.store(table.words, cell(C.EWMA_US, slot), 0);
  resetService(table, slot);
}
