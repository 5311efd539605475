// The splice of one client socket and one backend socket: bytes both ways with backpressure,
// half-close passed through, a shared idle timeout, byte counts, and exactly one `onClose` whatever
// ends it (both sides finishing, an error or reset on either, the idle sweeper, a drain).
//
// Backpressure: a chunk read from one side is written to the other at once; when that write leaves
// the writer's buffer at `maxBuffered` or more, the reader is paused until the writer drains. So per
// direction Sluice holds at most maxBuffered, plus the read that crossed it (a socket read is at
// most 64 KiB), plus one more read the paused reader may hold: maxBuffered + 128 KiB however slow
// the far side reads (test/l4/tcp-proxy.test.ts, "slow reader").
//
// Half-close: both sockets run with allowHalfOpen, and an end read from one side becomes an end
// written to the other once what came before it is flushed, so a client that shuts its writing
// side still gets the whole answer. Each socket closes by itself once both its directions are done.

import type net from 'node:net';
import type { IdleMember, IdleSweeper } from './idle.js';

/** Counters shared by every relay of one listener (plain numbers: one thread owns them). */
export interface ByteCounters {
  /** Client → backend. */
  bytesIn: number;
  /** Backend → client. */
  bytesOut: number;
}

export interface RelayOptions {
  /** Pause the reader when the opposite socket has this many bytes queued (at least its highWaterMark). */
  maxBuffered: number;
  sweeper: IdleSweeper | null;
  counters: ByteCounters | null;
  /** Exactly once, after both sockets have closed. `reason` says what ended it. */
  onClose: (relay: Relay, reason: RelayEnd) => void;
}

export type RelayEnd = 'done' | 'error' | 'idle' | 'aborted';

/** 64 KiB: four of Node's 16 KiB socket buffers, enough to keep a fast link busy between drains. */
export const DEFAULT_MAX_BUFFERED = 65_536;

export class Relay implements IdleMember {
  active = false;
  idleTicks = 0;
  /** Client → backend bytes so far. */
  bytesIn = 0;
  /** Backend → client bytes so far. */
  bytesOut = 0;
  readonly client: net.Socket;
  readonly backend: net.Socket;
  readonly #options: RelayOptions;
  #open = 2;
  #reason: RelayEnd = 'done';
  #finished = false;

  /**
   * Start relaying. `initial` bytes (already read from the client: a peeked ClientHello, data
   * after a PROXY header) go to the backend first. The client may be paused; it is resumed here.
   */
  constructor(client: net.Socket, backend: net.Socket, options: RelayOptions, initial: readonly Buffer[] = []) {
    this.client = client;
    this.backend = backend;
    this.#options = options;
    for (const b of initial) {
      this.bytesIn += b.length;
      if (options.counters) options.counters.bytesIn += b.length;
      backend.write(b);
    }
    this.#wire(client, backend, true);
    this.#wire(backend, client, false);
    options.sweeper?.add(this);
    this.#watchClose(client, backend);
    this.#watchClose(backend, client);
    if (!client.destroyed && client.isPaused()) client.resume();
  }

  /** Close both sides now (drain timeout, shutdown). onClose still runs once. */
  destroy(reason: RelayEnd = 'aborted'): void {
    if (this.#reason === 'done') this.#reason = reason;
    this.client.destroy();
    this.backend.destroy();
  }

  expire(): void {
    this.destroy('idle');
  }

  #wire(src: net.Socket, dst: net.Socket, up: boolean): void {
    const bound = Math.max(this.#options.maxBuffered, dst.writableHighWaterMark);
    const counters = this.#options.counters;
    src.on('data', (chunk: Buffer) => {
      this.active = true;
      if (up) {
        this.bytesIn += chunk.length;
        if (counters) counters.bytesIn += chunk.length;
      } else {
        this.bytesOut += chunk.length;
        if (counters) counters.bytesOut += chunk.length;
      }
      // write() returns false at highWaterMark; the bound is at or above it, so 'drain' will follow.
      if (!dst.write(chunk) && dst.writableLength >= bound) src.pause();
    });
    dst.on('drain', () => {
      this.active = true; // a slow reader that is still reading is not idle
      if (src.isPaused() && !src.destroyed) src.resume();
    });
    src.on('end', () => {
      this.active = true;
      if (!dst.destroyed) dst.end();
    });
    // The peer may have sent its FIN before the relay existed (with the preface, while the backend
    // connected): its 'end' has been emitted already, so pass it on now.
    if (src.readableEnded && !dst.destroyed) dst.end();
    src.on('error', () => {
      if (this.#reason === 'done') this.#reason = 'error';
    });
  }

  #watchClose(s: net.Socket, other: net.Socket): void {
    const closed = (hadError: boolean) => {
      // A reset or error on one side resets the other (an abort must not look like a clean end of
      // stream to a protocol that frames by EOF); a clean close means both of its directions
      // finished, and the other side finishes by itself once its queue is flushed.
      if (hadError) {
        if (this.#reason === 'done') this.#reason = 'error';
        abort(other);
      } else if (this.#reason !== 'done') other.destroy();
      if (--this.#open === 0) this.#finish();
    };
    // A socket that closed before we got here (client reset while the backend connected) counts.
    if (s.closed) queueMicrotask(() => closed(true));
    else s.once('close', closed);
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#options.sweeper?.delete(this);
    this.#options.onClose(this, this.#reason);
  }
}

/** Close with a TCP reset when the socket still has a handle, else just destroy it. */
function abort(s: net.Socket): void {
  if (s.destroyed) return;
  try {
    s.resetAndDestroy();
  } catch {
    s.destroy();
  }
}
