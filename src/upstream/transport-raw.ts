// A plain upstream connection on a raw libuv TCP handle (src/net/uv.ts) instead of a net.Socket.
// Same system calls, minus the stream.Duplex and EventEmitter work net.Socket does around each
// read and write (docs/performance.md, "Raw upstream handles").
//
// What net.Socket did for us and this file now does itself:
// - writes made while connecting (or corked) are held, in order, and sent together, in one call;
// - a write libuv could not finish at once keeps its bytes referenced until oncomplete, and
//   reports "not drained" until then; onDrain follows;
// - failures found inside a write are reported on a later tick, never from inside the call;
// - reads go into one buffer shared by every plain upstream connection of this thread.

import { errorName, heldWrite, readResult, sharedReadBuffer, UV_EOF, writeReq, type TcpHandle, type UvReq } from '../net/uv.js';
import { RawConnector } from '../net/raw-connect.js';
import type { Transport, TransportSink } from './transport.js';

/**
 * Reads land in the thread's shared buffer (uv.ts): everything downstream that keeps bytes past
 * the callback copies them (the response parser, the tryEnd backlog).
 */
const READ_BUFFER = sharedReadBuffer;

/** Bytes held while connecting before writes report "not drained" (net.Socket's highWaterMark). */
const HOLD_LIMIT = 16 * 1024;

const CRLF = '\r\n';

export class RawTransport implements Transport {
  readonly #sink: TransportSink;
  #connector: RawConnector | null;
  #handle: TcpHandle | null = null;
  #closed = false;
  #paused = false;
  #corked = 0;
  /** Writes held while connecting or corked, in order; strings go out as UTF-8. */
  #held: (string | Buffer)[] = [];
  #heldBytes = 0;
  /** Writes libuv still holds (their oncomplete has not run). */
  #inFlight = 0;
  /** A write returned false: onDrain is owed once nothing is held or in flight. */
  #owesDrain = false;

  constructor(host: string, port: number, sink: TransportSink) {
    this.#sink = sink;
    this.#connector = new RawConnector(host, port, this.#onConnected);
  }

  get needsDrain(): boolean {
    return this.#owesDrain;
  }

  writeText(s: string): boolean {
    const h = this.#handle;
    if (h === null || this.#corked > 0 || this.#closed) return this.#hold(s, s.length);
    const err = h.writeUtf8String(writeReq(), s);
    return this.#afterWrite(heldWrite(err), err, null);
  }

  writeBytes(b: Buffer): boolean {
    const h = this.#handle;
    if (h === null || this.#corked > 0 || this.#closed) return this.#hold(b, b.length);
    const err = h.writeBuffer(writeReq(), b);
    return this.#afterWrite(heldWrite(err), err, b);
  }

  writeChunk(b: Buffer): boolean {
    const line = b.length.toString(16) + CRLF;
    const h = this.#handle;
    if (h === null || this.#corked > 0 || this.#closed) {
      this.#hold(line, line.length);
      this.#hold(b, b.length);
      return this.#hold(CRLF, 2);
    }
    const chunks = [line, 'utf8', b, 'buffer', CRLF, 'utf8'];
    const err = h.writev(writeReq(), chunks, false);
    return this.#afterWrite(heldWrite(err), err, chunks);
  }

  cork(): void {
    this.#corked++;
  }

  uncork(): void {
    if (this.#corked === 0 || --this.#corked > 0) return;
    if (this.#handle !== null && !this.#closed) this.#flush();
  }

  pause(): void {
    this.#paused = true;
    if (this.#handle !== null && !this.#closed) this.#handle.readStop();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (this.#handle !== null && !this.#closed) this.#handle.readStart();
  }

  destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#held = [];
    this.#heldBytes = 0;
    const connector = this.#connector;
    this.#connector = null;
    if (connector !== null) connector.cancel();
    const h = this.#handle;
    // Writes libuv still holds are cancelled by the close (their oncomplete sees #closed).
    if (h !== null) h.close(this.#onClosed);
    else setImmediate(this.#onClosed);
  }

  #onClosed = (): void => {
    this.#sink.onClose();
  };

  #hold(piece: string | Buffer, bytes: number): boolean {
    if (this.#closed) return true;
    this.#held.push(piece);
    this.#heldBytes += bytes;
    if (this.#heldBytes < HOLD_LIMIT) return true;
    this.#owesDrain = true;
    return false;
  }

  /** Send what was held (connected, or the last uncork): one write, one system call. */
  #flush(): void {
    const held = this.#held;
    if (held.length === 0) return this.#drained();
    this.#held = [];
    this.#heldBytes = 0;
    const h = this.#handle!;
    const req = writeReq();
    let err: number;
    let keep: unknown = null;
    if (held.length === 1) {
      const only = held[0]!;
      if (typeof only === 'string') err = h.writeUtf8String(req, only);
      else err = h.writeBuffer(req, (keep = only));
    } else if (held.every((p) => typeof p === 'string')) {
      // A pipelined batch of request heads: one string, encoded once.
      err = h.writeUtf8String(req, held.join(''));
    } else {
      const chunks: unknown[] = [];
      for (const p of held) chunks.push(p, typeof p === 'string' ? 'utf8' : 'buffer');
      err = h.writev(req, chunks, false);
      keep = chunks;
    }
    this.#afterWrite(heldWrite(err), err, keep);
    if (this.#inFlight === 0) this.#drained();
  }

  /**
   * After a write call: false while libuv holds bytes of it (kept alive through `keep`, the Buffer
   * or chunk list libuv points into, until oncomplete).
   */
  #afterWrite(req: UvReq | null, err: number, keep: unknown): boolean {
    if (err !== 0) {
      // Not from inside the write: the caller is mid-way through its own state change.
      process.nextTick(this.#failLater, errorName(err));
      return true;
    }
    if (req === null) return this.#inFlight === 0;
    req.keep = keep;
    req.oncomplete = this.#onWritten;
    this.#inFlight++;
    this.#owesDrain = true;
    return false;
  }

  #onWritten = (status: number): void => {
    this.#inFlight--;
    if (this.#closed) return;
    if (status < 0) return this.#fail(errorName(status));
    if (this.#inFlight === 0) this.#drained();
  };

  #drained(): void {
    if (!this.#owesDrain || this.#heldBytes >= HOLD_LIMIT) return;
    this.#owesDrain = false;
    this.#sink.onDrain();
  }

  #failLater = (detail: string): void => {
    this.#fail(detail);
  };

  #fail(detail: string): void {
    if (this.#closed) return;
    this.#sink.onError(detail);
    this.destroy();
  }

  #onConnected = (handle: TcpHandle | null, error: string): void => {
    this.#connector = null;
    if (handle === null) return this.#fail(error);
    this.#handle = handle;
    handle.setNoDelay(true);
    handle.useUserBuffer(READ_BUFFER);
    handle.onread = this.#onRead;
    if (!this.#paused) handle.readStart();
    this.#sink.onConnect();
    if (!this.#closed && this.#corked === 0) this.#flush();
  };

  #onRead = (): undefined => {
    const n = readResult();
    if (n > 0) this.#sink.onData(READ_BUFFER.subarray(0, n));
    else if (n === UV_EOF) {
      if (this.#closed) return;
      this.#sink.onEnd();
      this.destroy();
    } else if (n < 0) this.#fail(errorName(n));
    return undefined;
  };
}
