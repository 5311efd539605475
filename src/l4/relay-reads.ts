// Which buffer one side of a relay reads into, over the listener's ReadBuffers (read-buffers.ts).
//
// A quiet side reads into the shared buffer and each read is copied out at once (small reads are
// the norm there, and a copy of a few bytes is cheaper than owning memory while idle). A read that
// fills the shared buffer means the side is streaming: from the next read on it reads into a buffer
// of its own, and each read is written onwards straight from it (no copy, no allocation but the
// view). While a write from the owned buffer is queued the relay has stopped reading this side, so
// no read can land on bytes still waiting to go. When a read comes back small again with nothing
// queued, the buffer goes back to the free list.
//
// libuv reads into whatever buffer the handle was last given, and the only safe moment to give it
// another is the return value of its read callback (`next`): a buffer swapped at any other time
// could already be the target of the handle's next read.

import { ReadBuffers } from './read-buffers.js';

/** A read from an owned buffer below this means the stream has quieted: give the buffer back. */
const QUIET_READ_BYTES = 16_384;
/**
 * "No owned buffer": a Buffer rather than null, so the field holds Buffers from the start. A field
 * that held only null until a connection first streamed changed its type then, and V8 deoptimised
 * the relay code that depends on it (docs/l4.md, "Benchmark").
 */
const NONE: Buffer = Buffer.alloc(0);

export class RelayReads {
  readonly #buffers: ReadBuffers;
  /** The buffer the handle reads into now (set with useUserBuffer to the shared one at first). */
  #current: Buffer;
  #own: Buffer = NONE;
  #lastSmall = false;

  constructor(buffers: ReadBuffers) {
    this.#buffers = buffers;
    this.#current = buffers.shared;
  }

  // V8 treats a field as a constant until a store first changes it, and deoptimises the code that
  // relied on that when one does. These three first change when a connection first streams: in a
  // process that served short connections first (the bench's warm-up) that deoptimised the relay's
  // constructors, settle and release, which were compiled again on the next short connections
  // (--trace-deopt after the first download; docs/l4.md, "Benchmark"). So they are changed once
  // here, on a throwaway instance, as the module loads: ordinary fields before any code runs hot.
  static {
    const r = new RelayReads(new ReadBuffers(1024, 0));
    r.#own = r.#current = Buffer.alloc(1);
    r.#lastSmall = true;
  }

  /** Whether this side owns a buffer now (tests, status). */
  get streaming(): boolean {
    return this.#own !== NONE;
  }

  /** `n` bytes have landed in the current buffer: the chunk to write onwards. Hot path. */
  landed(n: number): Buffer {
    const buf = this.#current;
    if (buf !== this.#own) {
      // The shared buffer: the next read of any handle lands here, so the bytes leave now.
      const chunk = this.#buffers.copyOut(n);
      if (n === buf.length) this.#own = this.#buffers.take();
      return chunk;
    }
    this.#lastSmall = n < QUIET_READ_BYTES;
    return n === buf.length ? buf : buf.subarray(0, n);
  }

  /**
   * The buffer for the handle's next read, to return from the read callback; undefined: the same.
   * `queued`: a write from the chunk `landed` gave is still queued.
   */
  next(queued: boolean): Buffer | undefined {
    const own = this.#own;
    if (own === NONE) return undefined;
    if (this.#current !== own) return (this.#current = own);
    if (!this.#lastSmall || queued) return undefined;
    this.#buffers.give(own);
    this.#own = NONE;
    return (this.#current = this.#buffers.shared);
  }

  /**
   * Once both handles of the relay are closed: no read can land in the owned buffer, and libuv
   * writes nothing more from it (its queued writes are cancelled).
   */
  release(): void {
    if (this.#own === NONE) return;
    this.#buffers.give(this.#own);
    this.#own = NONE;
  }
}
