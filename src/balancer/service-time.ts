// What peak-ewma.ts knows about each backend, in the shared table (LB_* columns): the latency it
// answers at and the in-flight count it was answering at, so that its service time per request,
//
//   service = latency ÷ concurrency observed        (Little's law, L = λW, per backend)
//
// is known separately from the queueing in that latency. Written by the data path after every
// response (ProxyContext.onResponseStart), next to ewma.ts's classic estimate.
//
// Latency is a time-based EWMA that rises faster than it falls, a softened form of Finagle's peak
// EWMA: a sample moves the value by 1 − exp(−Δt/τ) of the difference, Δt the time since the last
// sample (capped at RISE_STEP_MS going up), τ = RISE_MS going up and SERVICE_DECAY_MS going down.
// Finagle's peak (τ up = 0) lets one sample replace the value; but every response a worker handles
// after its event loop was held up (GC, a CPU shared with other processes) carries that delay, so
// one stall of 50 ms would make every busy backend look as slow as a 40 ms one at once. A level
// must now last ~RISE_MS to be believed, and a stall, which is also a gap in the samples, moves the
// value by a fraction of its length. Meanwhile a backend that really slows down loses traffic
// through its growing in-flight count. Concurrency is an EWMA that rises with τ SERVICE_DECAY_MS
// and falls with τ CONCURRENCY_FALL_MS. Unlike ewma.ts, nothing decays on read: an idle backend
// keeps the estimate of its last answers, and peak-ewma.ts re-measures it with probes instead of
// letting it drift back into contention by time alone.
//
// Value, concurrency and stamp are three words updated one after the other: a reader may pair a
// fresh latency with the previous concurrency for one read, which is harmless for balancing.

import { C, ageOf, cell, toStamp } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';

/**
 * τ of the downward blend, ms. Short enough that a backend probed every PROBE_INTERVAL_MS (500 ms)
 * moves 86% of the way to each probe's answer, so after a 40 ms episode a ~1 ms backend is back
 * in contention after 2–3 probes, 1–1.5 s (at 500 ms it took 3–4 probes, and a part-time-slow
 * backend missed ~20% of its fast spells); long enough that at thousands of samples a second
 * the value averages over hundreds of ms (a lower sample in the same ms as the last update has no
 * weight).
 */
export const SERVICE_DECAY_MS = 250;
/**
 * τ of the upward blend, ms: a backend answering every ms that turns 40 ms slow is believed to be
 * over 25 ms within ~100 ms (its in-flight count has already pushed traffic away by then).
 */
export const RISE_MS = 100;
/**
 * Rising, Δt counts for at most this many ms: one sample lifts the value by at most
 * 1 − e^(−20/100) = 18% of the difference. Without the cap a sample after a long gap would count
 * almost fully: a stall is such a gap, and so is the 500 ms between two probes of a shunned
 * backend, whose estimate would then follow every unlucky probe (one that waited for a busy CPU)
 * all the way up, and a recovered backend would stay out while the machine is busy. Falling is
 * not capped, so recovery is judged by time (SERVICE_DECAY_MS).
 */
export const RISE_STEP_MS = 20;
/**
 * τ of the concurrency EWMA going down, ms (up it uses SERVICE_DECAY_MS). Concurrency is the load
 * a backend usually serves at: it must climb within a second when traffic arrives, but survive a
 * few seconds of shunning, when the only samples are probes at concurrency 1. Otherwise a backend
 * back from a slow spell would be judged by its probes' concurrency, every request above 1 in flight
 * would count as queueing, and it would be let back one request at a time.
 */
export const CONCURRENCY_FALL_MS = 10_000;
/** LB_CONCURRENCY fixed point: 1000 = one request in flight. */
export const CONCURRENCY_SCALE = 1000;

/** CAS attempts before a sample is dropped (fresher samples just landed). */
const MAX_TRIES = 8;
const MAX_US = 0x7fffffff;
const MAX_CONCURRENCY = 1_000_000;

/**
 * Fold one response into the backend's estimate: `latencyUs` observed while `concurrency` requests
 * (this one included; below 1 counts as 1) were in flight to it, at table time `now`.
 */
export function recordService(table: SharedTable, slot: number, latencyUs: number, concurrency: number, now: number): void {
  const words = table.words;
  const st = cell(C.LB_STAMP, slot);
  const dt = ageOf(Atomics.load(words, st), now);
  // Weights the old value keeps; dt ≤ 0 (same ms, or another worker stamped later) keeps it all.
  const w = dt <= 0 ? 1 : Math.exp(-dt / SERVICE_DECAY_MS);
  const wUp = dt <= 0 ? 1 : Math.exp(-(dt < RISE_STEP_MS ? dt : RISE_STEP_MS) / RISE_MS);
  const wFall = dt <= 0 ? 1 : Math.exp(-dt / CONCURRENCY_FALL_MS);
  const sample = latencyUs >= MAX_US ? MAX_US : latencyUs > 1 ? Math.round(latencyUs) : 1;
  const n = (concurrency > 1 ? Math.min(concurrency, MAX_CONCURRENCY) : 1) * CONCURRENCY_SCALE;

  const v = cell(C.LB_LATENCY_US, slot);
  for (let tries = 0; tries < MAX_TRIES; tries++) {
    const current = Atomics.load(words, v);
    // Floor down and ceil up, as in ewma.ts: moves at least 1 µs toward the sample once any time has passed.
    const next =
      current === 0 ? sample
      : sample >= current ? (wUp === 1 ? current : Math.ceil(current * wUp + sample * (1 - wUp)))
      : w === 1 ? current : Math.floor(current * w + sample * (1 - w));
    if (Atomics.compareExchange(words, v, current, next) === current) break;
  }
  const q = cell(C.LB_CONCURRENCY, slot);
  for (let tries = 0; tries < MAX_TRIES; tries++) {
    const current = Atomics.load(words, q);
    const keep = n >= current ? w : wFall;
    const next = current === 0 ? n : keep === 1 ? current : Math.round(current * keep + n * (1 - keep));
    if (Atomics.compareExchange(words, q, current, next) === current) break;
  }
  // The stamp only moves forward (another worker may have stamped a later ms).
  const stamp = toStamp(now);
  for (let tries = 0; tries < MAX_TRIES; tries++) {
    const seen = Atomics.load(words, st);
    if (ageOf(seen, now) <= 0 || Atomics.compareExchange(words, st, seen, stamp) === seen) return;
  }
}

/** A failed request counts as a `penaltyUs` answer at concurrency 1: errors never look fast. */
export function recordServiceFailure(table: SharedTable, slot: number, now: number, penaltyUs: number): void {
  recordService(table, slot, penaltyUs, 1, now);
}

/** Latency estimate in µs, or 0 when the backend has no sample yet. */
export function latencyUs(table: SharedTable, slot: number): number {
  return Atomics.load(table.words, cell(C.LB_LATENCY_US, slot));
}

/** Concurrency the latency was observed at (≥ 1; 1 before any sample). */
export function concurrency(table: SharedTable, slot: number): number {
  const q = Atomics.load(table.words, cell(C.LB_CONCURRENCY, slot));
  return q > CONCURRENCY_SCALE ? q / CONCURRENCY_SCALE : 1;
}

/** Service time per request in µs (latency ÷ concurrency); 0 when there is no sample yet. */
export function serviceUs(table: SharedTable, slot: number): number {
  return latencyUs(table, slot) / concurrency(table, slot);
}

/** How long ago (ms) the last sample landed; Infinity when never (or retired). */
export function sampleAge(table: SharedTable, slot: number, now: number): number {
  return ageOf(Atomics.load(table.words, cell(C.LB_STAMP, slot)), now);
}

/** Forget the estimate (recovery, ejection): the next pick probes the backend afresh. */
export function resetService(table: SharedTable, slot: number): void {
  Atomics.store(table.words, cell(C.LB_LATENCY_US, slot), 0);
  Atomics.store(table.words, cell(C.LB_CONCURRENCY, slot), 0);
}
