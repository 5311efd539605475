// The memory relayed connections read into (see relay-reads.ts for how one side uses it), one
// set per listener:
// - one shared buffer every quiet connection reads into; what lands there is copied out at
//   once, so it is free again before the next read of any socket (reads and their callbacks run one
//   at a time on this thread), and an idle connection holds no read memory at all;
// - a free list of larger buffers a connection owns while it streams. Its reads are written onwards
//   straight from that buffer, without a copy or an allocation, and it goes back to the list when
//   the connection quiets down or closes. The list keeps at most `keep` of them, so a burst of
//   streaming connections leaves at most keep × size behind.
//
// Why not Node's default read path: every read gets a freshly allocated ArrayBuffer (64 KiB asked of
// malloc, shrunk to what arrived), which at loopback speeds means an allocation, page faults and a
// cold copy per read (profiled in docs/l4.md, "Relay speed").

/**
 * 192 KiB: larger reads cut the CPU per MB (fewer read/write calls and wake-ups per MB; docs/l4.md,
 * "Relay speed"), and this is the most one direction may hold with the default 64 KiB maxBuffered
 * (relay.ts). Only a streaming connection holds one.
 */
export const DEFAULT_READ_BUFFER_BYTES = 196_608;
/** 64 KiB: libuv's own read size, so a quiet connection reads as much at once as Node would. */
export const SHARED_READ_BYTES = 65_536;
/** 16 × 192 KiB = 3 MiB kept at most once streaming connections have ended. */
const DEFAULT_KEEP = 16;
/**
 * What copyOut() carves copies from: 16 KiB, or the read's size when that is larger. A slab lives as
 * long as any copy from it (a queued write holds one), like Node's 8 KiB allocation pool.
 */
const COPY_SLAB_BYTES = 16_384;

export class ReadBuffers {
  /** Read into by every backend connection that owns no buffer; copied out right after each read. */
  readonly shared: Buffer;
  /** Size of an owned buffer. */
  readonly size: number;
  readonly #keep: number;
  readonly #free: Buffer[] = [];
  #slab: ArrayBuffer;
  #slabUsed = 0;

  constructor(size: number = DEFAULT_READ_BUFFER_BYTES, keep: number = DEFAULT_KEEP) {
    if (!Number.isInteger(size) || size < 1024) throw new RangeError(`read buffer size ${size} is below 1024 bytes`);
    this.size = size;
    this.#keep = keep;
    // allocUnsafeSlow: memory of its own, never a slice of Node's shared 8 KiB pool.
    this.shared = Buffer.allocUnsafeSlow(Math.min(size, SHARED_READ_BYTES));
    this.#slab = new ArrayBuffer(COPY_SLAB_BYTES);
  }

  /**
   * The first `n` bytes of the shared buffer, copied into memory of their own (the next read of
   * any handle lands in the shared buffer). Hot path: every read of a quiet connection.
   *
   * Why not Buffer.allocUnsafe: it slices Node's pool below 4 KiB and allocates on its own path
   * above, so the first large read after a run of small ones (the bench's downloads after its
   * connections) reached code the optimised relay had never run, and deoptimised it. Here reads of
   * every size take the same path: carve from the slab, or first start a new slab when it is full.
   */
  copyOut(n: number): Buffer {
    let used = this.#slabUsed;
    if (used + n > this.#slab.byteLength) {
      this.#slab = new ArrayBuffer(n > COPY_SLAB_BYTES ? n : COPY_SLAB_BYTES);
      used = 0;
    }
    // Buffer.from(arrayBuffer, offset, length), not Buffer#subarray: Node's subarray branches on
    // an end equal to the length (a read that fills a slab), another path first seen mid-traffic.
    const chunk = Buffer.from(this.#slab, used, n);
    // 8-byte aligned, as Node's pool does (a copy may be viewed as wider typed arrays).
    this.#slabUsed = (used + n + 7) & ~7;
    this.shared.copy(chunk, 0, 0, n);
    return chunk;
  }

  /** Owned buffers on the free list now (tests). */
  get free(): number {
    return this.#free.length;
  }

  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** Only once no read can land in `b` and no queued write refers to it. */
  give(b: Buffer): void {
    if (this.#free.length < this.#keep && b.length === this.size && b !== this.shared) this.#free.push(b);
  }
}
