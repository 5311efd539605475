// The backend side of one proxied WebSocket, on Sluice's own connection: the upgrade request, the
// backend's answer (a checked 101, or a refusal read with the HTTP path's response parser), then
// frames both ways (frame-parser.ts in, frame-writer.ts out, batched per turn by write-batch.ts),
// the close handshake, read pausing and the connection's end.
//
// The connection is a leg-transport.ts: a raw libuv TCP handle for plain backends given by IP
// address, a Node socket for TLS and named backends. Plain transports read into one buffer per
// thread, and frames that arrive whole are handed to uWS as views of it.

import type tls from 'node:tls';
import { UpstreamError, type UpstreamErrorKind } from '../upstream/errors.js';
import { ResponseParser, type ResponseSink } from '../upstream/response-parser.js';
import { FrameParser, Op, type FrameSink } from './frame-parser.js';
import { frameSize, writeFrame } from './frame-writer.js';
import { checkUpgrade, statusOf, upgradeRequest } from './upgrade-answer.js';
import { SCRATCH_BYTES, giveBack, schedule, takeScratch, type Batched, type Scratch } from './write-batch.js';
import { openTransport, type LegTransport, type TransportEvents } from './leg-transport.js';

export interface LegSink extends FrameSink {
  /** The backend said 101 and it checks out: frames may flow. `headers` are all of the 101's. */
  onUpgrade(protocol: string, headers: string[]): void;
  /** The backend answered with another status: its head and body (cut at `REFUSAL_BODY_LIMIT`). */
  onRefusal(status: number, reason: string, headers: string[], body: Buffer): void;
  /** No usable answer: no connection, a broken or refused TLS session, a malformed answer, a timeout. */
  onHandshakeError(err: UpstreamError): void;
  /** The socket is gone, after the upgrade (whatever ended it). */
  onGone(): void;
  /** Run `fn` with the client's sends corked, so one backend read is one write to the client. */
  corked(fn: () => void): void;
  /** This turn's batch went out with `messages` data messages of `bytes` payload bytes (for the counters). */
  onSent(messages: number, bytes: number): void;
}

export interface LegTarget {
  readonly host: string;
  readonly port: number;
  readonly tls: tls.ConnectionOptions | null;
  /** Request line and headers, without the WebSocket lines and the blank line (handshake.ts). */
  readonly head: string;
  readonly protocols: readonly string[];
  /** Connect plus answer, as the pool's connect and request timeouts. */
  readonly timeoutMs: number;
  readonly maxMessageBytes: number;
}

/** A refusal body larger than this is cut (handshake refusals are short pages). */
const REFUSAL_BODY_LIMIT = 1024 * 1024;
/** Longest 101 head accepted. */
const MAX_HEAD_BYTES = 64 * 1024;
/** How long a backend has to answer Sluice's close frame before its socket is destroyed (as ws waits). */
const CLOSE_WAIT_MS = 30_000;

const CRLFCRLF = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);

const S_HANDSHAKE = 0;
const S_REFUSAL = 1;
const S_OPEN = 2;
/** A close frame went out or came in: no more messages out; reads go on until the close frame. */
const S_CLOSING = 3;
const S_GONE = 4;

export class UpstreamLeg implements Batched, FrameSink, TransportEvents {
  readonly #sink: LegSink;
  readonly #socket: LegTransport;
  /** Dropped once upgraded: an idle WebSocket should not keep its request head. */
  #target: LegTarget | null;
  #state = S_HANDSHAKE;
  #connected = false;
  #accept: string;
  #timer: NodeJS.Timeout | null;
  /** Bytes of the answer's head so far (a head split across reads). */
  #head: Buffer | null = null;
  #refusal: Refusal | null = null;
  #parser: FrameParser | null = null;
  #sentClose = false;
  #gotClose = false;
  /** The read being parsed inside the client's cork: chunk[0..chunkLen]. */
  #chunk: Buffer = EMPTY;
  #chunkLen = 0;
  // Frames appended this turn (write-batch.ts), and the data messages among them.
  #out: Scratch | null = null;
  #outLen = 0;
  #queued = false;
  #sentMessages = 0;
  #sentBytes = 0;
  /**
   * What each write the transport still holds will free once done, in write order (null: nothing,
   * a frame written alone). Allocated on the first held write: most never are.
   */
  #held: (Scratch | null)[] | null = null;

  constructor(sink: LegSink, target: LegTarget) {
    this.#sink = sink;
    this.#target = target;
    const req = upgradeRequest(target.protocols);
    this.#accept = req.accept;
    this.#timer = setTimeout(this.#onTimeout, target.timeoutMs);
    this.#socket = openTransport(target, this);
    // UTF-8: see handshake.ts upstreamHead. Held by the transport until it connects.
    this.#socket.writeHead(target.head + req.tail);
  }

  /** Upgraded, and no close frame sent or received: messages may be sent. */
  get open(): boolean {
    return this.#state === S_OPEN;
  }

  /** Bytes waiting to reach the backend: this turn's frames and the socket's queue. */
  get bufferedAmount(): number {
    return this.#outLen + this.#socket.queuedBytes;
  }

  send(data: Uint8Array, binary: boolean): void {
    if (this.#state !== S_OPEN) return;
    this.#sentMessages++;
    this.#sentBytes += data.length;
    this.#append(binary ? Op.BINARY : Op.TEXT, -1, data);
  }

  ping(data: Uint8Array): void {
    if (this.#state === S_OPEN) this.#append(Op.PING, -1, data);
  }

  pong(data: Uint8Array): void {
    if (this.#state === S_OPEN) this.#append(Op.PONG, -1, data);
  }

  /**
   * Send a close frame (code 1005: one without a code) and wait for the backend's; before the
   * upgrade, just drop the connection.
   */
  close(code: number, reason: Uint8Array | string): void {
    if (this.#state === S_HANDSHAKE || this.#state === S_REFUSAL) return this.terminate();
    if (this.#sentClose || this.#state === S_GONE) return;
    this.#sendClose(code, typeof reason === 'string' ? Buffer.from(reason) : reason);
    // Reading goes on until the backend's close frame (then #endSoon), within the same bound.
    if (this.#gotClose) this.#endSoon();
    else this.#closeWithin();
  }

  /** Both close frames are out or the leg gave up: end Sluice's side, and bound the wait for the backend's. */
  #endSoon(): void {
    this.#state = S_CLOSING;
    this.#socket.end();
    this.#closeWithin();
  }

  /** A backend that never finishes the close is destroyed after CLOSE_WAIT_MS (it still counts as open until then). */
  #closeWithin(): void {
    this.#state = S_CLOSING;
    this.#clearTimer();
    this.#timer = setTimeout(this.#onTimeout, CLOSE_WAIT_MS);
    this.#timer.unref();
  }

  /** Destroy the socket now, no close handshake and no more calls to the sink. */
  terminate(): void {
    this.#clearTimer();
    this.#state = S_GONE;
    this.#socket.destroy();
  }

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  // Writing

  /** Append one frame to this turn's batch (or write it alone if it is larger than a scratch buffer). */
  #append(opcode: number, prefix: number, payload: Uint8Array): void {
    const size = frameSize(payload.length + (prefix >= 0 ? 2 : 0));
    let out = this.#out;
    if (out !== null && this.#outLen + size > SCRATCH_BYTES) {
      this.#writeOut();
      out = null;
    }
    if (out === null) {
      if (size > SCRATCH_BYTES) {
        const big = Buffer.allocUnsafe(size);
        writeFrame(big, 0, opcode, prefix, payload);
        this.#write(big, null);
        this.#countSent();
        return;
      }
      out = this.#out = takeScratch();
      this.#outLen = 0;
    }
    this.#outLen = writeFrame(out.bytes, this.#outLen, opcode, prefix, payload, out.words);
    if (!this.#queued) {
      this.#queued = true;
      schedule(this);
    }
  }

  flush(): void {
    this.#queued = false;
    if (this.#out !== null) this.#writeOut();
    this.#countSent();
  }

  /** Counters once per batch, not once per message. */
  #countSent(): void {
    if (this.#sentMessages === 0) return;
    const messages = this.#sentMessages;
    const bytes = this.#sentBytes;
    this.#sentMessages = this.#sentBytes = 0;
    this.#sink.onSent(messages, bytes);
  }

  #writeOut(): void {
    const out = this.#out!;
    const n = this.#outLen;
    this.#out = null;
    this.#outLen = 0;
    this.#write(n === SCRATCH_BYTES ? out.bytes : new Uint8Array(out.mem, 0, n), out);
  }

  /** Write `buf`; `scratch` (the buffer under it, if any) goes back to the free list once the transport is done with it. */
  #write(buf: Uint8Array, scratch: Scratch | null): void {
    if (this.#socket.write(buf)) (this.#held ??= []).push(scratch);
    else if (scratch !== null) giveBack(scratch);
  }

  /** TransportEvents: the oldest held write is done. */
  onWritten(): void {
    const held = this.#held;
    const scratch = held === null ? undefined : held.shift();
    if (scratch != null) giveBack(scratch);
  }

  #sendClose(code: number, reason: Uint8Array): void {
    this.#sentClose = true;
    this.#append(Op.CLOSE, code === 1005 ? -1 : code, code === 1005 ? EMPTY : reason);
    this.flush();
  }

  // Reading

  /** TransportEvents: bytes from the backend, buf[0..len]. */
  onData(buf: Buffer, len: number): void {
    if (this.#state >= S_OPEN) {
      if (this.#parser!.done) return;
      this.#chunk = buf;
      this.#chunkLen = len;
      this.#sink.corked(this.#parse);
    } else if (this.#state === S_HANDSHAKE) {
      this.#answer(buf.subarray(0, len));
    } else if (this.#state === S_REFUSAL) {
      this.#refusal!.read(buf.subarray(0, len));
    }
  }

  #parse = (): void => {
    const chunk = this.#chunk;
    this.#chunk = EMPTY;
    this.#parser!.execute(chunk, this.#chunkLen);
  };

  /** Bytes of the backend's answer to the upgrade request. */
  #answer(chunk: Buffer): void {
    let data = chunk;
    let from = 0;
    if (this.#head !== null) {
      from = Math.max(0, this.#head.length - 3);
      data = Buffer.concat([this.#head, chunk]);
    }
    const end = data.indexOf(CRLFCRLF, from);
    if (end < 0) {
      if (data.length > MAX_HEAD_BYTES) return this.#handshakeFailed('protocol', 'answer head too large');
      this.#head = data === chunk ? Buffer.from(chunk) : data;
      return;
    }
    this.#head = null;
    const head = data.toString('latin1', 0, end);
    const status = statusOf(head);
    if (status < 0) return this.#handshakeFailed('protocol', `malformed status line: ${JSON.stringify(head.slice(0, 64))}`);
    if (status !== 101) {
      // Read as any HTTP response (framing, chunked bodies), from its first byte.
      this.#state = S_REFUSAL;
      this.#refusal = new Refusal(this);
      this.#refusal.read(data);
      return;
    }
    const target = this.#target!;
    const up = checkUpgrade(head, this.#accept, target.protocols);
    if (typeof up === 'string') return this.#handshakeFailed('protocol', up);
    this.#clearTimer();
    this.#state = S_OPEN;
    this.#parser = new FrameParser(this, target.maxMessageBytes);
    this.#target = null;
    this.#accept = '';
    this.#sink.onUpgrade(up.protocol, up.headers);
    // Frames the backend sent right behind its 101.
    if (end + 4 < data.length && this.#state >= S_OPEN) this.onData(data.subarray(end + 4), data.length - end - 4);
  }

  // FrameSink: the parser reports here; the close handshake's part that is the leg's comes first.

  onMessage(data: Buffer, binary: boolean): void {
    this.#sink.onMessage(data, binary);
  }

  onPing(data: Buffer): void {
    this.#sink.onPing(data);
  }

  onPong(data: Buffer): void {
    this.#sink.onPong(data);
  }

  onClose(code: number, reason: Buffer): void {
    this.#gotClose = true;
    // Answer with its code (RFC 6455 §5.5.1), then end: the backend, as the server, closes the TCP
    // connection once it has it.
    if (!this.#sentClose) this.#sendClose(code, EMPTY);
    this.#endSoon();
    this.#sink.onClose(code, reason);
  }

  onFrameError(code: number, why: string): void {
    if (!this.#sentClose) this.#sendClose(code, EMPTY);
    this.#endSoon();
    this.#sink.onFrameError(code, why);
  }

  // The handshake's end

  refusalDone(status: number, reason: string, headers: string[], body: Buffer): void {
    if (this.#state !== S_REFUSAL) return;
    this.#clearTimer();
    this.#state = S_GONE;
    this.#socket.destroy();
    this.#sink.onRefusal(status, reason, headers, body);
  }

  /** The answer was not a readable HTTP response after all. */
  refusalBroken(message: string): void {
    if (this.#state === S_REFUSAL) this.#handshakeFailed('protocol', message);
  }

  #handshakeFailed(kind: UpstreamErrorKind, message: string): void {
    this.#clearTimer();
    this.#state = S_GONE;
    this.#socket.destroy();
    this.#sink.onHandshakeError(new UpstreamError(kind, 'WebSocket handshake with the backend failed: ' + message, true));
  }

  // TransportEvents (the rest: onData, onWritten above)

  onConnect(): void {
    this.#connected = true;
  }

  #onTimeout = (): void => {
    this.#timer = null;
    if (this.#state === S_HANDSHAKE) this.#handshakeFailed(this.#connected ? 'timeout' : 'connect', this.#connected ? 'no answer in time' : 'connect timed out');
    else if (this.#state === S_REFUSAL) this.#refusal!.end();
    // The backend never answered Sluice's close frame.
    else this.#socket.destroy();
  };

  onError(code: string): void {
    if (this.#state === S_HANDSHAKE) {
      const kind = !this.#connected ? 'connect' : code === 'ECONNRESET' || code === 'EPIPE' ? 'reset' : 'protocol';
      this.#handshakeFailed(kind, `${this.#target!.host}:${this.#target!.port}: ${code}`);
    }
    // After the upgrade onClosed follows and says the rest.
  }

  onClosed(): void {
    this.#clearTimer();
    const state = this.#state;
    this.#state = S_GONE;
    if (this.#out !== null) {
      giveBack(this.#out);
      this.#out = null;
      this.#outLen = 0;
    }
    if (state === S_HANDSHAKE) {
      this.#handshakeFailed('reset', 'the backend closed the connection before answering');
    } else if (state === S_REFUSAL) {
      this.#refusal!.end();
    } else if (state !== S_GONE) {
      this.#sink.onGone();
    }
  }

  #clearTimer(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
  }
}

/** A refusal read with the HTTP path's parser: head, then the body up to the limit. */
class Refusal implements ResponseSink {
  readonly #leg: UpstreamLeg;
  readonly #parser = new ResponseParser();
  #status = 502;
  #reason = '';
  #headers: string[] | null = null;
  #chunks: Buffer[] = [];
  #size = 0;
  #done = false;

  constructor(leg: UpstreamLeg) {
    this.#leg = leg;
    this.#parser.reset(this, false);
  }

  read(chunk: Buffer): void {
    try {
      this.#parser.execute(chunk);
    } catch (err) {
      // A broken head is a failed handshake; bytes past the end or a broken body: what arrived
      // is relayed, as a cut-short body.
      if (this.#headers === null) this.#leg.refusalBroken((err as Error).message);
      else this.end();
    }
  }

  /** The connection ended (or the answer took too long): relay what there is. */
  end(): void {
    try {
      this.#parser.finish();
    } catch {
      /* cut short: what arrived is relayed */
    }
    if (this.#headers === null) this.#leg.refusalBroken('the backend closed the connection before its answer was complete');
    else this.#complete();
  }

  onHead(status: number, reason: string, headers: string[]): void {
    this.#status = status;
    this.#reason = reason;
    this.#headers = headers;
  }

  onBody(chunk: Buffer): boolean {
    if (this.#size < REFUSAL_BODY_LIMIT) {
      const piece = Buffer.from(chunk.subarray(0, REFUSAL_BODY_LIMIT - this.#size));
      this.#chunks.push(piece);
      this.#size += piece.length;
    }
    return true;
  }

  onComplete(): void {
    this.#complete();
  }

  #complete(): void {
    if (this.#done) return;
    this.#done = true;
    this.#leg.refusalDone(this.#status, this.#reason, this.#headers ?? [], Buffer.concat(this.#chunks, this.#size));
  }
}
