// How one backend connection reads: the `onread` of its net.Socket, over the listener's
// ReadBuffers (read-buffers.ts).
//
// A quiet connection reads into the shared buffer and each read is copied out at once (small reads
// are the norm there, and a copy of a few bytes is cheaper than owning memory while idle). A read
// that fills the shared buffer means the backend is streaming: from the next read on the connection
// reads into a buffer of its own, and each read goes to the client straight from it (no copy, no
// allocation but the view). While a write from the owned buffer is queued, the relay keeps the
// backend paused, so no read can land on bytes still waiting to go. When a read comes back small
// again and nothing is queued, the buffer goes back to the free list.

import type net from 'node:net';
import type { ReadBuffers } from './read-buffers.js';

/** Where the reads go: the relay. */
export interface BackendSink {
  /**
   * Write `chunk` to the client. Returns true while some of it is still queued; the sink has then
   * paused the backend until it has gone.
   */
  fromBackend(chunk: Buffer): boolean;
}

/** A read from an owned buffer below this means the stream has quieted: give the buffer back. */
const QUIET_READ_BYTES = 16_384;

export class BackendReads {
  /** Set when the relay starts, which is before the socket's first read (it starts on 'connect'). */
  sink: BackendSink | null = null;
  /** For net.connect. */
  readonly onread: net.OnReadOpts;
  readonly #buffers: ReadBuffers;
  #own: Buffer | null = null;

  constructor(buffers: ReadBuffers) {
    this.#buffers = buffers;
    // Node asks `buffer` for the buffer of the next read after every callback.
    this.onread = { buffer: () => this.#own ?? buffers.shared, callback: (nread, buf) => this.#read(nread, buf as Buffer) };
  }

  /** Whether the connection owns a buffer now (tests, status). */
  get streaming(): boolean {
    return this.#own !== null;
  }

  /** After the socket has closed: no read can land in the owned buffer, no write refers to it. */
  release(): void {
    if (this.#own === null) return;
    this.#buffers.give(this.#own);
    this.#own = null;
  }

  #read(nread: number, buf: Buffer): boolean {
    const sink = this.sink;
    if (sink === null) return false; // cannot happen (see `sink`); stop reading rather than drop bytes
    if (buf !== this.#own) {
      // The shared buffer: the next read of any backend lands here, so the bytes leave now.
      const chunk = Buffer.allocUnsafe(nread);
      buf.copy(chunk, 0, 0, nread);
      if (nread === buf.length) this.#own = this.#buffers.take();
      sink.fromBackend(chunk);
      return true;
    }
    const queued = sink.fromBackend(nread === buf.length ? buf : buf.subarray(0, nread));
    if (!queued && nread < QUIET_READ_BYTES) this.release();
    return true;
  }
}
