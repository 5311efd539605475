// The splice of one client connection and one backend connection, on libuv handles (src/net/uv.ts):
// bytes both ways with backpressure, half-close passed through, a shared idle timeout, byte counts,
// and exactly one `onClose` whatever ends it (both sides finishing, an error or reset on either,
// the idle sweeper, a drain).
//
// Each direction (Way) reads its source into the buffer RelayReads (relay-reads.ts) chooses and
// writes each read to its destination at once:
// - the kernel takes the write whole (the usual case): the next read may follow;
// - libuv queues part of it (the destination is slow): the source stops reading until the write
//   has completed, because the queued bytes may point into a buffer the next read would reuse. So
//   each direction holds at most one read in Sluice: 64 KiB copied out of the shared buffer, or one
//   owned buffer (192 KiB by default, tcp-proxy.ts caps it); measured in test/l4/tcp-proxy.test.ts,
//   "slow reader".
//
// Half-close: an end of stream read from one side becomes a FIN on the other (libuv sends it after
// the writes queued before it), so a client that shuts its writing side still gets the whole
// answer. Once both sides have ended and nothing is queued, both handles close: the close is the
// FIN of the second side (and of the first, if its shutdown has not run yet), which saves a
// shutdown per connection, and no completion callback is asked of either (each is a JavaScript
// callback per connection).
// Errors: a reset or error on one side resets the other (an abort must not look like a clean end of
// stream to a protocol that frames by EOF).

import { heldWrite, readResult, ShutdownWrap, UV_EOF, writeReq, type TcpHandle, type UvReq } from '../net/uv.js';
import type { IdleMember, IdleSweeper } from './idle.js';
import { BYTES_ZERO } from './byte-count.js';
import { RelayReads } from './relay-reads.js';
import type { ReadBuffers } from './read-buffers.js';

/** Counters shared by every relay of one listener (plain numbers: one thread owns them). */
export interface ByteCounters {
  /** Client → backend. */
  bytesIn: number;
  /** Backend → client. */
  bytesOut: number;
}

/**
 * What every relay of one listener shares: one object per listener, not one per connection (see
 * Relay's constructor for why nothing per connection is an object or array literal).
 */
export interface RelayOptions {
  /**
   * Where both handles read (the listener's). Both handles were given `buffers.shared` with
   * useUserBuffer; the backend is reading already (tcp-proxy.ts starts it with the connect).
   */
  buffers: ReadBuffers;
  sweeper: IdleSweeper | null;
  counters: ByteCounters | null;
  /** Exactly once per relay, when both its handles are closed. `reason` says what ended it. */
  onClose: (relay: Relay, reason: RelayEnd) => void;
}

export type RelayEnd = 'done' | 'error' | 'idle' | 'aborted';

/** 64 KiB: the bound one direction kept before reads were owned (tcp-proxy.ts caps owned reads at this + 128 KiB). */
export const DEFAULT_MAX_BUFFERED = 65_536;

/** A handle a relay reads: `way` is the direction it feeds, null until the relay starts. */
export type RelayedHandle = TcpHandle & { way: Way | null };

/**
 * The `onread` of every handle a relay reads, set once by whoever starts the handle reading
 * (tcp-proxy.ts: the client at accept, the backend with its connect) together with `way = null`;
 * the Relay then only stores `way`. Node calls onread with the handle as `this`, so one function
 * serves every handle: no closure per direction, and one `onread` store per handle instead of two
 * (each is a call into Node, not a property write). A read before the relay starts has nobody to
 * go to; none comes (a backend cannot read before its connect completes, and the client is not
 * reading yet), but Node aborts on a read with no callback at all.
 */
export function relayRead(this: RelayedHandle): Uint8Array | undefined {
  const way = this.way;
  return way === null ? undefined : way.onread();
}

/** Way.state: src has ended (EOF read); the FIN to dst is on its way or out. */
const ENDED = 1;
/** Way.state: a write to dst is queued; src is not reading. */
const WAITING = 2;

/** One direction: reads `src`, writes `dst`. */
class Way {
  readonly relay: Relay;
  readonly src: TcpHandle;
  readonly dst: TcpHandle;
  readonly up: boolean;
  readonly reads: RelayReads;
  /**
   * ENDED and WAITING, in one field rather than two booleans. V8 treats a field as a constant until
   * a store first changes it, and deoptimises the code that relied on that when one does. A write
   * is first held when a connection first streams faster than its reader, so a `waiting` boolean
   * changed then, long after the connect and relay code had been optimised on short connections,
   * and that code was compiled again (--trace-deopt: Way, Relay and settle, after the bench's first
   * download). ENDED changes on every connection, so this field is an ordinary one from the first.
   */
  state = 0;
  /** The opposite direction. */
  other: Way | null = null;

  constructor(relay: Relay, src: RelayedHandle, dst: TcpHandle, up: boolean, buffers: ReadBuffers) {
    this.relay = relay;
    this.src = src;
    this.dst = dst;
    this.up = up;
    this.reads = new RelayReads(buffers);
    src.way = this; // its onread is relayRead already
  }

  get waiting(): boolean {
    return (this.state & WAITING) !== 0;
  }

  get ended(): boolean {
    return (this.state & ENDED) !== 0;
  }

  /** Write `chunk` to dst; when libuv keeps part of it, stop reading src until it has gone. */
  write(chunk: Buffer): void {
    const err = this.dst.writeBuffer(writeReq(), chunk);
    const req = heldWrite(err);
    if (err !== 0) return this.relay.fail();
    if (req === null) return;
    req.oncomplete = onWritten;
    req.way = this;
    req.chunk = chunk; // kept alive while libuv points into it
    this.state |= WAITING;
    this.src.readStop();
  }

  /** The queued write has gone (status 0) or failed. */
  written(status: number): void {
    this.state &= ~WAITING;
    if (status !== 0) return this.relay.fail();
    this.relay.active = true; // a slow reader that is still reading is not idle
    if (this.relay.closing) return;
    if (!this.ended) this.src.readStart();
    else if (this.other!.ended) this.relay.settle();
  }

  /** A read of src landed (relayRead). */
  onread(): Uint8Array | undefined {
    const n = readResult();
    const relay = this.relay;
    if (n > 0) {
      relay.active = true;
      relay.count(this.up, n);
      const chunk = this.reads.landed(n);
      if (!relay.closing) this.write(chunk);
      return this.reads.next(this.waiting);
    }
    if (n === UV_EOF) this.#end();
    else if (n < 0) relay.fail();
    return undefined;
  }

  /** src sent its FIN (libuv stops reading it by itself). */
  #end(): void {
    this.state |= ENDED;
    this.relay.active = true;
    if (this.relay.closing) return;
    if (this.other!.ended) return this.relay.settle();
    // The first side to end: its FIN goes to dst after what is queued for dst (libuv orders the
    // shutdown after the writes). Nothing waits for it: the relay closes once the other side has
    // ended too and nothing is queued (settle), so the request asks for no completion callback.
    const req = new ShutdownWrap();
    req.handle = this.dst;
    this.dst.shutdown(req);
  }
}

function closeHandle(h: TcpHandle, reset: boolean): void {
  if (reset) h.reset();
  else h.close();
}

function onWritten(this: UvReq, status: number): void {
  (this.way as Way).written(status);
}

export class Relay implements IdleMember {
  active = false;
  idleTicks = 0;
  sweepIndex = -1;
  /** Client → backend bytes so far (a double from the start: BYTES_ZERO). */
  bytesIn = BYTES_ZERO;
  /** Backend → client bytes so far. */
  bytesOut = BYTES_ZERO;
  /** Both handles are closing or closed: nothing more is read or written. */
  closing = false;
  readonly client: TcpHandle;
  readonly backend: TcpHandle;
  /** Whatever the creator handed in (tcp-proxy.ts: its Conn), for its onClose. */
  readonly owner: object | null;
  readonly #options: RelayOptions;
  readonly #upWay: Way;
  readonly #downWay: Way;
  #reason: RelayEnd = 'done';

  /**
   * Start relaying. `initial` (bytes already read from the client: a peeked ClientHello, data after a
   * PROXY header; and a PROXY header for the backend) goes to the backend first.
   *
   * `options` is the listener's, and what onClose needs of this connection comes as `owner`, not in
   * a closure or an options literal per connection: V8 may pretenure an object literal's allocation
   * site (it did here after long downloads), and a pretenured per-connection object in the old
   * generation that points at young ones keeps each closed connection's whole graph alive through
   * every scavenge until the next full GC. Measured (docs/l4.md, "Memory"): the L4 heap's old
   * generation then grew ~1.5 KB per connection and was reclaimed by a mark-compact every second.
   *
   * Both handles' `onread` must be relayRead already (see there).
   */
  constructor(client: RelayedHandle, backend: RelayedHandle, options: RelayOptions, initial: Buffer | null = null, owner: object | null = null) {
    this.client = client;
    this.backend = backend;
    this.owner = owner;
    this.#options = options;
    this.#upWay = new Way(this, client, backend, true, options.buffers);
    this.#downWay = new Way(this, backend, client, false, options.buffers);
    this.#upWay.other = this.#downWay;
    this.#downWay.other = this.#upWay;
    options.sweeper?.add(this);
    if (initial !== null && initial.length > 0) {
      this.#upWay.write(initial);
      if (this.closing) return;
    }
    if (!this.#upWay.waiting) client.readStart();
  }

  /** Bytes queued in libuv for either side now (what Sluice holds beyond the reads in hand). */
  get buffered(): number {
    return this.client.writeQueueSize + this.backend.writeQueueSize;
  }

  /** Sluice stopped reading the backend until the client takes what is queued (tests, status). */
  get backendPaused(): boolean {
    return this.#downWay.waiting;
  }

  /** Sluice stopped reading the client until the backend takes what is queued. */
  get clientPaused(): boolean {
    return this.#upWay.waiting;
  }

  /** Whether the backend → client direction reads into a buffer of its own (streaming). */
  get streaming(): boolean {
    return this.#downWay.reads.streaming;
  }

  count(up: boolean, n: number): void {
    const counters = this.#options.counters;
    if (up) {
      this.bytesIn += n;
      if (counters) counters.bytesIn += n;
    } else {
      this.bytesOut += n;
      if (counters) counters.bytesOut += n;
    }
  }

  /**
   * Both sides have ended: close both once nothing is queued for either (a queued write's
   * completion calls again). The close is each side's FIN where the shutdown has not run yet:
   * every byte both peers sent has been read, so it is not a reset.
   */
  settle(): void {
    if (!this.#upWay.waiting && !this.#downWay.waiting) this.#close(false);
  }

  /** An error or reset on either side: reset both. */
  fail(): void {
    if (this.#reason === 'done') this.#reason = 'error';
    this.#close(true);
  }

  /** Close both sides now (drain timeout, shutdown). onClose still runs once. */
  destroy(reason: RelayEnd = 'aborted'): void {
    if (this.#reason === 'done') this.#reason = reason;
    this.#close(false);
  }

  expire(): void {
    this.destroy('idle');
  }

  #close(reset: boolean): void {
    if (this.closing) return;
    this.closing = true;
    this.#options.sweeper?.delete(this);
    // libuv closes the descriptors inside these calls (uv_close on a TCP stream closes its fd at
    // once; only the notification would come a loop turn later, and none is asked for): from here
    // no read can land in an owned buffer and nothing more is written from one (queued writes are
    // cancelled; their requests still hold their chunks until then). So the buffers go back and the
    // owner hears of the end now, with two JavaScript callbacks per connection saved.
    // A reset only on a handle that was never asked for a FIN: libuv refuses to reset one with a
    // shutdown pending, and Node then counts the handle as closing, so a close() after the refusal
    // does nothing and the descriptor leaks (seen on Node 20: reset() gave EINVAL, close() never
    // called back, the fd stayed open; a test of it cannot end, as the handle keeps its process
    // alive). The backend was
    // asked for one once the client's side ended, the client once the backend's did.
    closeHandle(this.client, reset && !this.#downWay.ended);
    closeHandle(this.backend, reset && !this.#upWay.ended);
    this.#upWay.reads.release();
    this.#downWay.reads.release();
    this.#options.onClose(this, this.#reason);
  }
}
