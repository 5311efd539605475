// Control plane: merges the workers' latency snapshots (latency.ts) into one histogram per backend
// slot, and reduces each to what the admin server shows: Prometheus buckets, sum, count, percentiles.
//
// Snapshots are cumulative per worker thread. When a worker dies its last snapshot is folded into a
// "retired" histogram, so a replaced worker does not make the merged counts go backwards (only what
// it recorded after the last scrape is lost).

import hdr from 'hdr-histogram-js';
import type { JsHistogram } from 'hdr-histogram-js';
import { LATENCY_BUCKET_BITS, newLatencyHistogram, type EncodedHistogram, type LatencySnapshot, type SlotLatency } from './latency.js';

/**
 * Upper bounds of the Prometheus buckets, seconds: 0.5 ms to 10 s, roughly 1-2.5-5 per decade
 * (the Prometheus client default, shifted down a decade: a proxy's added latency lives there).
 */
export const BUCKET_BOUNDS_SECONDS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
const BOUNDS_US = BUCKET_BOUNDS_SECONDS.map((s) => Math.round(s * 1e6));

/** One latency distribution, reduced. Times in milliseconds unless named otherwise. */
export interface LatencySummary {
  count: number;
  sumSeconds: number;
  /**
   * Cumulative counts per BUCKET_BOUNDS_SECONDS entry (the +Inf bucket is `count`). A value counts
   * as <= a bound when the bound falls in or above its HdrHistogram bucket, so at most 1% above.
   */
  buckets: number[];
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface SlotLatencySummary {
  total: LatencySummary;
  upstream: LatencySummary;
}

/** One worker's reply. `threadId` tells a restarted worker (same index) from its predecessor. */
export interface WorkerLatency {
  worker: number;
  threadId: number;
  snapshot: LatencySnapshot;
}

interface Merged {
  total: JsHistogram;
  upstream: JsHistogram;
  totalSumMs: number;
  upstreamSumMs: number;
}

export const EMPTY_SUMMARY: LatencySummary = Object.freeze({
  count: 0,
  sumSeconds: 0,
  buckets: BUCKET_BOUNDS_SECONDS.map(() => 0),
  p50Ms: 0,
  p90Ms: 0,
  p99Ms: 0,
  maxMs: 0,
});

export class LatencyAggregator {
  /** Latest snapshot of every worker thread seen, by thread id. */
  readonly #last = new Map<number, LatencySnapshot>();
  /** What workers that have since exited had recorded, by slot. */
  readonly #retired = new Map<number, Merged>();
  /** The slot generation each retired entry was recorded under. */
  readonly #gens = new Map<number, number>();

  /**
   * Take the replies of one collection round; `liveThreadIds` are the workers still running (one
   * that is alive but did not answer in time keeps its previous snapshot). Returns the merged
   * summary of every slot that has data.
   */
  update(replies: readonly WorkerLatency[], liveThreadIds: ReadonlySet<number>, slotGen?: (slot: number) => number): Map<number, SlotLatencySummary> {
    for (const r of replies) this.#last.set(r.threadId, r.snapshot);
    for (const [threadId, snapshot] of this.#last) {
      if (liveThreadIds.has(threadId)) continue;
      for (const s of snapshot.slots) addInto(this.#retired, s);
      this.#last.delete(threadId);
    }
    // A slot handed to another backend (its generation moved on) drops what dead workers recorded
    // for the old one; live workers reset their own (proxy-worker.ts).
    if (slotGen !== undefined) {
      for (const slot of this.#retired.keys()) {
        const gen = slotGen(slot);
        if (this.#gens.has(slot) && this.#gens.get(slot) !== gen) this.#retired.delete(slot);
        this.#gens.set(slot, gen);
      }
    }
    const merged = new Map<number, Merged>();
    for (const [slot, r] of this.#retired) {
      const m = emptyMerged();
      m.total.add(r.total);
      m.upstream.add(r.upstream);
      m.totalSumMs = r.totalSumMs;
      m.upstreamSumMs = r.upstreamSumMs;
      merged.set(slot, m);
    }
    for (const snapshot of this.#last.values()) for (const s of snapshot.slots) addInto(merged, s);
    const out = new Map<number, SlotLatencySummary>();
    for (const [slot, m] of merged) {
      out.set(slot, { total: summarize(m.total, m.totalSumMs), upstream: summarize(m.upstream, m.upstreamSumMs) });
    }
    return out;
  }
}

function emptyMerged(): Merged {
  return {
    total: newLatencyHistogram(false) as JsHistogram,
    upstream: newLatencyHistogram(false) as JsHistogram,
    totalSumMs: 0,
    upstreamSumMs: 0,
  };
}

function addInto(target: Map<number, Merged>, s: SlotLatency): void {
  let m = target.get(s.slot);
  if (m === undefined) {
    m = emptyMerged();
    target.set(s.slot, m);
  }
  m.total.add(decode(s.total));
  m.upstream.add(decode(s.upstream));
  m.totalSumMs += s.totalSumMs;
  m.upstreamSumMs += s.upstreamSumMs;
}

function decode(encoded: EncodedHistogram): JsHistogram {
  if (typeof encoded === 'string') return hdr.decodeFromCompressedBase64(encoded, LATENCY_BUCKET_BITS, false) as JsHistogram;
  return (hdr.JsHistogram as unknown as RawDecoder).decode(encoded, LATENCY_BUCKET_BITS);
}

/** JsHistogram.decode (V2 bytes) exists at run time; the package's types only declare it by module augmentation it does not load. */
interface RawDecoder {
  decode(data: Uint8Array, bitBucketSize: typeof LATENCY_BUCKET_BITS): JsHistogram;
}

/** Reduce one merged histogram: cumulative bucket counts in one pass over its counts array. */
export function summarize(h: JsHistogram, sumMs: number): LatencySummary {
  const count = h.totalCount;
  if (count === 0) return EMPTY_SUMMARY;
  const perBucket = BOUNDS_US.map(() => 0);
  let b = 0;
  for (let i = 0; i < h.countsArrayLength; i++) {
    const n = h.getCountAtIndex(i);
    if (n === 0) continue;
    const value = h.valueFromIndex(i);
    while (b < BOUNDS_US.length && BOUNDS_US[b]! < value) b++;
    if (b === BOUNDS_US.length) break;
    perBucket[b]! += n;
  }
  let running = 0;
  const buckets = perBucket.map((n) => (running += n));
  return {
    count,
    sumSeconds: sumMs / 1000,
    buckets,
    p50Ms: h.getValueAtPercentile(50) / 1000,
    p90Ms: h.getValueAtPercentile(90) / 1000,
    p99Ms: h.getValueAtPercentile(99) / 1000,
    maxMs: h.maxValue / 1000,
  };
}
