// The splice of one client socket and one backend socket: bytes both ways with backpressure,
// half-close passed through, a shared idle timeout, byte counts, and exactly one `onClose` whatever
// ends it (both sides finishing, an error or reset on either, the idle sweeper, a drain).
//
// Two read paths, because Node lets us choose only for sockets we create:
// - Backend → client (the heavy direction of most L4 traffic: downloads, query results): the
//   backend socket was created with `onread` (backend-reads.ts) and each read comes to `fromBackend`,
//   for a streaming connection as a view of a buffer the next read reuses. It is written to the
//   client at once. If the kernel takes it all (the usual case) the next read may follow; if any of
//   it is queued, the backend is paused until the client has taken it, because the queued write may
//   still point into that buffer. So this direction holds at most one read in Sluice (192 KiB by
//   default, never above maxBuffered + 128 KiB: tcp-proxy.ts caps the read buffer).
// - Client → backend: 'data' events (accepted sockets cannot take `onread`), each a fresh chunk,
//   written at once; when that leaves the backend's queue above `maxBuffered`, the client is
//   paused until 'drain'. At most maxBuffered plus the read that crossed it (≤ 64 KiB), plus one more
//   read the paused client may hold: maxBuffered + 128 KiB (test/l4/tcp-proxy.test.ts, "slow reader").
// The backend's writableHighWaterMark is one byte above maxBuffered (tcp-proxy.ts), so a client
// chunk the kernel takes whole schedules no 'drain' tick.
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
  /** Pause the client when the backend has this many bytes queued (see tcp-proxy.ts for its highWaterMark). */
  maxBuffered: number;
  /**
   * The backend socket was created with `onread` and its owner passes every read to `fromBackend`
   * (the fast path above); false: the backend is read with 'data' events like the client.
   */
  backendOnread: boolean;
  sweeper: IdleSweeper | null;
  counters: ByteCounters | null;
  /** Exactly once, after both sockets have closed. `reason` says what ended it. */
  onClose: (relay: Relay, reason: RelayEnd) => void;
}

export type RelayEnd = 'done' | 'error' | 'idle' | 'aborted';

/** 64 KiB: four of Node's 16 KiB socket buffers, enough to keep a fast link busy between drains. */
export const DEFAULT_MAX_BUFFERED = 65_536;

/** Written behind a queued write only to be called back once everything before it has gone. */
const FLUSH_MARK = Buffer.alloc(0);

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
  /** One callback for the life of the relay, not one per write (write callbacks allocate when new). */
  readonly #clientFlushed: (err?: Error | null) => void;
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
    this.#clientFlushed = (err) => {
      this.active = true; // a slow reader that is still reading is not idle
      if (!err && !backend.destroyed) backend.resume();
    };
    for (const b of initial) {
      this.bytesIn += b.length;
      if (options.counters) options.counters.bytesIn += b.length;
      backend.write(b);
    }
    this.#wireData(client, backend, true);
    if (!options.backendOnread) this.#wireData(backend, client, false);
    this.#wireEnd(client, backend);
    this.#wireEnd(backend, client);
    options.sweeper?.add(this);
    this.#watchClose(client, backend);
    this.#watchClose(backend, client);
    if (!client.destroyed && client.isPaused()) client.resume();
  }

  /**
   * One read of the backend (onread mode, backend-reads.ts): `chunk` may be a view of a buffer the
   * next read overwrites. Returns true when some of it is queued: the backend is then paused until
   * it has gone. Hot path: no allocation.
   */
  fromBackend(chunk: Buffer): boolean {
    this.active = true;
    this.bytesOut += chunk.length;
    const counters = this.#options.counters;
    if (counters) counters.bytesOut += chunk.length;
    const client = this.client;
    if (client.destroyed) return false; // nothing was queued; the close watchers end the backend
    client.write(chunk);
    if (client.writableLength === 0) return false;
    this.backend.pause();
    client.write(FLUSH_MARK, this.#clientFlushed);
    return true;
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

  /** 'data' path: write each chunk at once; pause `src` while `dst` has a full queue. */
  #wireData(src: net.Socket, dst: net.Socket, up: boolean): void {
    // The pause must be followed by a 'drain', which comes only when write() returned false, i.e.
    // the queue reached dst's highWaterMark: so pause at max(bound, highWaterMark).
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
      if (!dst.write(chunk) && dst.writableLength >= bound) src.pause();
    });
    dst.on('drain', () => {
      this.active = true; // a slow reader that is still reading is not idle
      if (src.isPaused() && !src.destroyed) src.resume();
    });
  }

  /** End and error handling of one direction, whichever read path it uses. */
  #wireEnd(src: net.Socket, dst: net.Socket): void {
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
