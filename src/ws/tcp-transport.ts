// A plain backend connection on a libuv TCP handle used directly (src/net/uv.ts): the transport
// of every ws:// backend. What a net.Socket adds on this path (a Writable's state machine per
// write, a Readable's per read, timers and events) is work a WebSocket leg does not need: the leg
// batches its own writes and parses each read at once. A backend given by name is resolved and
// its addresses tried in turn by raw-connect.ts, as the HTTP upstream connections do.
//
// Reads land in one 64 KiB buffer per thread (as the HTTP upstream connections' do): a read is
// parsed before the next can happen, so a view of it is enough. Writes go straight to the handle;
// a write the kernel could not take whole is held by libuv, and its buffer is given back to the
// caller only when libuv completes it.

import { errorName, heldWrite, readResult, sharedReadBuffer, ShutdownWrap, UV_EOF, writeReq, type TcpHandle, type UvReq } from '../net/uv.js';
import { RawConnector } from '../net/raw-connect.js';
import type { LegTransport, TransportEvents } from './leg-transport.js';

/** The thread's shared read buffer (uv.ts): a read is parsed before the next one lands. */
const READ_BUFFER = sharedReadBuffer;

/** A write libuv holds (heldWrite): who hears of its completion, and what it points into. */
interface PendingWrite extends UvReq {
  transport: TcpTransport | null;
  /** Kept referenced while libuv points into it. */
  buf: Uint8Array | null;
  /** A write the leg hears about (not the request head). */
  notify: boolean;
}

function writeDone(this: PendingWrite, status: number): void {
  const t = this.transport!;
  const notify = this.notify;
  this.transport = this.buf = null;
  t.afterWrite(status, notify);
}

export class TcpTransport implements LegTransport {
  /** Set once connected: the leg writes only after that (the head waits in #head). */
  #h: TcpHandle = null as unknown as TcpHandle;
  /** Resolving and connecting; null once it has answered. */
  #connector: RawConnector | null;
  readonly #events: TransportEvents;
  #connected = false;
  #closed = false;
  #reading = false;
  #paused = false;
  /** A FIN was asked for, and the peer's was read. */
  #shut = false;
  #eof = false;
  /** A head written before the connection was up. */
  #head: string | null = null;
  /**
   * Bytes libuv still holds for this handle, as of the last asynchronous write or completion:
   * read from the handle then (a native getter) rather than on every message that checks it.
   */
  #queued = 0;
  /** Writes libuv holds (the request head included): a FIN or a close on EOF waits for them. */
  #pending = 0;
  /** Why the connection failed, reported once it is closed. */
  #error: string | null = null;

  constructor(host: string, port: number, events: TransportEvents) {
    this.#events = events;
    this.#connector = new RawConnector(host, port, this.#onConnect);
  }

  get queuedBytes(): number {
    return this.#queued;
  }

  get closed(): boolean {
    return this.#closed;
  }

  writeHead(head: string): void {
    if (!this.#connected) this.#head = head;
    else this.#write(Buffer.from(head, 'utf8'), false);
  }

  write(buf: Uint8Array): boolean {
    return this.#write(buf, true);
  }

  #write(buf: Uint8Array, notify: boolean): boolean {
    if (this.#closed) return false;
    const err = this.#h.writeBuffer(writeReq(), buf);
    const req = heldWrite(err) as PendingWrite | null;
    if (err !== 0) {
      this.#fail(errorName(err));
      return false;
    }
    if (req === null) return false;
    req.oncomplete = writeDone as UvReq['oncomplete'];
    req.transport = this;
    req.buf = buf;
    req.notify = notify;
    this.#pending++;
    this.#queued = this.#h.writeQueueSize;
    return notify;
  }

  /** A write libuv held is done, or cancelled by a close: either way libuv no longer points into its buffer. */
  afterWrite(status: number, notify: boolean): void {
    this.#pending--;
    this.#queued = this.#closed || this.#pending === 0 ? 0 : this.#h.writeQueueSize;
    if (notify) this.#events.onWritten();
    if (status < 0) this.#fail(errorName(status));
  }

  pause(): void {
    this.#paused = true;
    if (this.#reading && !this.#closed) {
      this.#reading = false;
      this.#h.readStop();
    }
  }

  resume(): void {
    this.#paused = false;
    this.#startReading();
  }

  end(): void {
    if (this.#closed) return;
    if (!this.#connected) return this.destroy();
    this.#shutdown();
  }

  destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queued = 0;
    const connector = this.#connector;
    if (connector === null) return void this.#h.close(this.#onClosed);
    // Still connecting: no handle of ours to close; the leg hears of the close on a later tick,
    // as it would from a handle's close.
    this.#connector = null;
    connector.cancel();
    process.nextTick(this.#onClosed);
  }

  /** FIN once libuv has written what it holds (once). */
  #shutdown(): void {
    if (this.#shut) return;
    this.#shut = true;
    const req = new ShutdownWrap();
    req.handle = this.#h;
    req.oncomplete = this.#onShutdown as UvReq['oncomplete'];
    if (this.#h.shutdown(req) !== 0) this.destroy();
  }

  #onShutdown = (status: number): void => {
    // Both ways done, or the FIN could not be sent: nothing more will happen on this connection.
    if (this.#eof || status < 0) this.destroy();
  };

  #startReading(): void {
    if (this.#reading || this.#paused || !this.#connected || this.#closed) return;
    this.#reading = true;
    this.#h.readStart();
  }

  #onConnect = (h: TcpHandle | null, error: string): void => {
    if (this.#closed) {
      h?.close();
      return;
    }
    if (h === null) {
      this.#error = error;
      return this.destroy();
    }
    this.#connector = null;
    this.#h = h;
    this.#connected = true;
    h.setNoDelay(true);
    h.onread = this.#onRead;
    h.useUserBuffer(READ_BUFFER);
    this.#events.onConnect();
    const head = this.#head;
    this.#head = null;
    if (head !== null) this.writeHead(head);
    this.#startReading();
  };

  #onRead = (): undefined => {
    const n = readResult();
    if (n > 0) {
      if (!this.#closed) this.#events.onData(READ_BUFFER, n);
    } else if (n === UV_EOF) {
      this.#onEnd();
    } else if (n < 0) {
      this.#fail(errorName(n));
    }
    return undefined;
  };

  /** The backend sent FIN: finish what is queued, then close (a net.Socket without allowHalfOpen does the same). */
  #onEnd(): void {
    if (this.#closed) return;
    this.#eof = true;
    this.#reading = false;
    this.#h.readStop();
    if (this.#pending === 0) return this.destroy();
    // The FIN (ours, or the one end() asked for) follows the queued writes; then #onShutdown closes.
    this.#shutdown();
  }

  /** Close because something failed; the leg hears why once the handle is closed. */
  #fail(code: string): void {
    if (this.#closed) return;
    this.#error = code;
    this.destroy();
  }

  #onClosed = (): void => {
    const err = this.#error;
    if (err !== null) this.#events.onError(err);
    this.#events.onClosed();
  };
}
