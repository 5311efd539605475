// Per-worker latency histograms, one pair per backend slot (total time and upstream time), in
// HdrHistogram's layout (hdr-histogram-js). Each worker records into its own; the control plane
// asks for a snapshot when it is scraped and merges them (latency-merge.ts): no shared writes, no
// locks, nothing on the request path but the record itself.
//
// Recording uses hdr-histogram-js's WebAssembly build when it loads (it compiles synchronously and
// works in worker threads): about 35 ns per value against about 200 ns for the pure-JS build, which
// computes indexes with log2/pow. Where WebAssembly is unavailable (--jitless) the JS build is used.
// Snapshots travel in HdrHistogram's standard V2 encoding, only for slots that recorded something
// since the previous snapshot: raw bytes from the WebAssembly build (~30 µs a histogram), or the
// compressed base64 form from the JS build, the only one it exposes (deflate makes it ~10× dearer).

import hdr from 'hdr-histogram-js';
import { CAPACITY } from '../state/layout.js';

/** Values are microseconds. Two significant digits: 1% resolution, ~26 KiB per histogram. */
export const LATENCY_SIGNIFICANT_DIGITS = 2;
/** One hour: longer values are recorded as one hour (the largest timeout Sluice accepts). */
export const LATENCY_MAX_US = 3_600_000_000;
/** 64-bit counts: 32-bit buckets could wrap after days at high request rates. */
export const LATENCY_BUCKET_BITS = 64;

export interface SlotLatency {
  slot: number;
  /** Requests recorded (total time). */
  count: number;
  /** Exact sums, milliseconds (HdrHistogram keeps counts, not sums). */
  totalSumMs: number;
  upstreamSumMs: number;
  /** Requests that had an upstream time. */
  upstreamCount: number;
  /** HdrHistogram V2 encoding, microseconds: raw bytes, or compressed base64 text (JS build). */
  total: EncodedHistogram;
  upstream: EncodedHistogram;
}

/** Everything one worker recorded since it started (cumulative, never reset). */
export interface LatencySnapshot {
  slots: SlotLatency[];
}

type Histogram = ReturnType<typeof hdr.build>;
export type EncodedHistogram = Uint8Array | string;

/** V2 bytes when the build can give them (WebAssembly), else compressed base64. */
function encode(h: Histogram): EncodedHistogram {
  const raw = h as Histogram & { encode?: () => Uint8Array };
  // slice: a copy that no later recording can change (the snapshot is kept until the slot changes).
  return typeof raw.encode === 'function' ? raw.encode().slice() : hdr.encodeIntoCompressedBase64(h);
}

let wasm: boolean | undefined;

/** Compile the WebAssembly build once per thread; false when this runtime cannot. */
function wasmAvailable(): boolean {
  if (wasm === undefined) {
    try {
      hdr.initWebAssemblySync();
      wasm = true;
    } catch {
      wasm = false;
    }
  }
  return wasm;
}

export function newLatencyHistogram(useWebAssembly = false): Histogram {
  return hdr.build({
    bitBucketSize: LATENCY_BUCKET_BITS,
    autoResize: false,
    lowestDiscernibleValue: 1,
    highestTrackableValue: LATENCY_MAX_US,
    numberOfSignificantValueDigits: LATENCY_SIGNIFICANT_DIGITS,
    useWebAssembly,
  });
}

/** ms → whole µs within the histogram's range. Precondition: ms >= 0. */
function toUs(ms: number): number {
  const us = Math.round(ms * 1000);
  return us > LATENCY_MAX_US ? LATENCY_MAX_US : us;
}

export class LatencyRecorder {
  readonly #wasm: boolean;
  readonly #total: (Histogram | undefined)[] = [];
  readonly #upstream: (Histogram | undefined)[] = [];
  /** Per slot: [count, upstreamCount, totalSumMs, upstreamSumMs]. */
  readonly #sums = new Float64Array(CAPACITY * 4);
  /** Per slot: the count when it was last encoded, and that encoding. */
  readonly #encodedAt = new Float64Array(CAPACITY).fill(-1);
  readonly #encoded: (SlotLatency | undefined)[] = [];
  #slots: number[] = [];

  constructor(useWebAssembly = true) {
    this.#wasm = useWebAssembly && wasmAvailable();
  }

  /** Whether this recorder runs on the WebAssembly build. */
  get webAssembly(): boolean {
    return this.#wasm;
  }

  /**
   * One finished request to `slot`: `totalMs` from the client's request to the end of Sluice's
   * response, `upstreamMs` from sending to the backend to its last response byte, or a negative
   * number when there was no upstream response (connect error, timeout). Allocates only the first
   * time a slot records.
   */
  record(slot: number, totalMs: number, upstreamMs: number): void {
    if (!(totalMs >= 0) || slot < 0 || slot >= CAPACITY) return;
    let total = this.#total[slot];
    if (total === undefined) total = this.#open(slot);
    total.recordValue(toUs(totalMs));
    const s = this.#sums;
    const i = slot * 4;
    s[i]! += 1;
    s[i + 2]! += totalMs;
    if (upstreamMs >= 0) {
      this.#upstream[slot]!.recordValue(toUs(upstreamMs));
      s[i + 1]! += 1;
      s[i + 3]! += upstreamMs;
    }
  }

  /** Everything recorded so far, per slot; re-encodes only slots that changed since the last call. */
  snapshot(): LatencySnapshot {
    const slots: SlotLatency[] = [];
    const s = this.#sums;
    for (const slot of this.#slots) {
      const i = slot * 4;
      const count = s[i]!;
      let entry = this.#encoded[slot];
      if (entry === undefined || this.#encodedAt[slot] !== count) {
        entry = {
          slot,
          count,
          upstreamCount: s[i + 1]!,
          totalSumMs: s[i + 2]!,
          upstreamSumMs: s[i + 3]!,
          total: encode(this.#total[slot]!),
          upstream: encode(this.#upstream[slot]!),
        };
        this.#encoded[slot] = entry;
        this.#encodedAt[slot] = count;
      }
      slots.push(entry);
    }
    return { slots };
  }

  /**
   * Forget what `slot` recorded: the control plane handed the slot to another backend (its
   * SLOT_GEN moved on), whose latency must not start with its predecessor's.
   */
  reset(slot: number): void {
    if (this.#total[slot] === undefined) return;
    this.#total[slot]?.destroy?.();
    this.#upstream[slot]?.destroy?.();
    this.#total[slot] = undefined;
    this.#upstream[slot] = undefined;
    this.#sums.fill(0, slot * 4, slot * 4 + 4);
    this.#encoded[slot] = undefined;
    this.#encodedAt[slot] = -1;
    this.#slots = this.#slots.filter((s) => s !== slot);
  }

  #open(slot: number): Histogram {
    const total = newLatencyHistogram(this.#wasm);
    this.#total[slot] = total;
    this.#upstream[slot] = newLatencyHistogram(this.#wasm);
    this.#slots = [...this.#slots, slot].sort((a, b) => a - b);
    return total;
  }
}
