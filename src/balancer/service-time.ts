// The shared per-request service-time estimate of each backend (SERVICE_US / SERVICE_STAMP columns),
// read by peak-ewma.ts. Written by the data path after every response, next to ewma.ts's latency.
//
// A latency sample taken while n requests were in flight to the backend (this one included) says
// the backend spent about latency / n on each of them: that is the service time, with the queueing
// divided out (the "latency ÷ concurrency observed" reading of Little's law, L = λW). The classic
// peak EWMA keeps the queueing in its latency and then multiplies by the queue again; this
// estimate does not, so `service × (in flight + 1)` predicts the latency a new request would see.
//
// Smoothing is Finagle's peak EWMA over those per-request samples: a higher sample replaces the
// value at once (a backend that slows down is judged by its first slow answer), a lower one blends
// in with weight 1 − exp(−Δt/SERVICE_DECAY_MS). Unlike ewma.ts, a reader never decays the value:
// an idle backend keeps the estimate of its last answer, and it is re-measured by probes
// (peak-ewma.ts) rather than drifting back into contention by the passage of time alone.

import { C, ageOf, cell, toStamp } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';

/**
 * τ of the downward blend, ms. Short enough that a backend probed every PROBE_INTERVAL_MS (200 ms)
 * moves a third of the way to each probe's answer, so a 40× peak is forgotten after ~8 probes
 * (under 2 s) once the backend has recovered; long enough that at thousands of samples a second the
 * value averages over hundreds of ms (a lower sample in the same ms as the last update has no weight).
 */
export const SERVICE_DECAY_MS = 500;

/** CAS attempts before a sample is dropped (fresher samples just landed). */
const MAX_TRIES = 8;
const MAX_US = 0x7fffffff;

/**
 * Fold one response into the backend's service-time estimate: `latencyUs` observed while
 * `concurrency` requests (this one included; values below 1 count as 1) were in flight to it.
 */
export function recordService(table: SharedTable, slot: number, latencyUs: number, concurrency: number, now: number): void {
  const perRequest = latencyUs / (concurrency > 1 ? concurrency : 1);
  const sample = perRequest >= MAX_US ? MAX_US : perRequest > 1 ? Math.round(perRequest) : 1;
  const words = table.words;
  const v = cell(C.SERVICE_US, slot);
  const st = cell(C.SERVICE_STAMP, slot);
  for (let tries = 0; tries < MAX_TRIES; tries++) {
    const current = Atomics.load(words, v);
    let next = sample;
    if (current > 0 && sample < current) {
      const dt = ageOf(Atomics.load(words, st), now);
      const w = dt <= 0 ? 1 : Math.exp(-dt / SERVICE_DECAY_MS);
      // Floor, as in ewma.ts: moves at least 1 µs toward the sample once any time has passed.
      next = dt <= 0 ? current : Math.floor(current * w + sample * (1 - w));
    }
    if (Atomics.compareExchange(words, v, current, next) === current) {
      // The stamp only moves forward (another worker may have stamped a later ms).
      const stamp = toStamp(now);
      for (let k = 0; k < MAX_TRIES; k++) {
        const seen = Atomics.load(words, st);
        if (ageOf(seen, now) <= 0 || Atomics.compareExchange(words, st, seen, stamp) === seen) break;
      }
      return;
    }
  }
}

/** A failed request counts as `penaltyUs` of service at concurrency 1: errors never look fast. */
export function recordServiceFailure(table: SharedTable, slot: number, now: number, penaltyUs: number): void {
  recordService(table, slot, penaltyUs, 1, now);
}

/** The estimate in µs, or 0 when the backend has no sample yet. */
export function serviceUs(table: SharedTable, slot: number): number {
  return Atomics.load(table.words, cell(C.SERVICE_US, slot));
}

/** How long ago (ms) the last sample landed; Infinity when never (or retired). */
export function serviceAge(table: SharedTable, slot: number, now: number): number {
  return ageOf(Atomics.load(table.words, cell(C.SERVICE_STAMP, slot)), now);
}

/** Forget the estimate (recovery, ejection): the next pick probes the backend afresh. */
export function resetService(table: SharedTable, slot: number): void {
  Atomics.store(table.words, cell(C.SERVICE_US, slot), 0);
}
