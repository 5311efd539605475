// Incremental reader of the frames a backend sends Sluice (RFC 6455 §5, server-to-client side).
//
// What it owns: frame headers split across reads, payloads split across reads, fragmented
// messages (with control frames between the fragments), the message size limit and the checks a
// client must make (unmasked frames, no RSV bits since no extension is negotiated, known opcodes,
// short unfragmented control frames, valid close codes, UTF-8 text and close reasons).
//
// A frame that arrives whole in one read is handed on as a view of that read's buffer (no copy):
// the sink must use it before returning. Only a frame split across reads, or a fragmented message,
// is copied, into a buffer of exactly its size. A message's view is a plain Uint8Array made from
// the read's ArrayBuffer, not a Buffer.subarray(): the latter goes through the species constructor
// and cost about 4× as much per message (measured in docs/websocket.md, "Per-message costs").

import { isUtf8 } from 'node:buffer';
import { sendableCode } from './handshake.js';

export interface FrameSink {
  /** A whole message (fragments joined). `data` is valid only during the call. */
  onMessage(data: Uint8Array, binary: boolean): void;
  onPing(data: Buffer): void;
  onPong(data: Buffer): void;
  /** The backend's close frame (1005 when it carried no code). Nothing is read after it. */
  onClose(code: number, reason: Buffer): void;
  /** The backend broke the protocol: `code` is what it must be told (1002, 1007, 1009). Nothing is read after it. */
  onFrameError(code: number, why: string): void;
}

export const Op = { CONT: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 } as const;

const S_HEAD = 0;
const S_PAYLOAD = 1;
const S_DONE = 2;

/** Longest frame header from a server: 2 bytes, 8 of extended length, no mask. */
const MAX_HEAD = 10;
const EMPTY = Buffer.alloc(0);

// The memory under the last buffer read, found by the buffer's identity: reading `.buffer` is a
// call into the runtime, and the plain upstream transports read into one buffer per thread.
let lastRead: Buffer | null = null;
let lastMem: ArrayBufferLike = new ArrayBuffer(0);
let lastBase = 0;

export class FrameParser {
  readonly #sink: FrameSink;
  readonly #maxMessage: number;
  #state = S_HEAD;
  /** A header split across reads (allocated on first need). */
  #head: Buffer | null = null;
  #headLen = 0;
  // The frame being read.
  #fin = false;
  #opcode = 0;
  #remaining = 0;
  /** Its payload when it did not arrive in one read; #frameOff bytes filled so far. */
  #frame: Buffer | null = null;
  #frameOff = 0;
  // A fragmented message in progress: its opcode (0 = none) and the fragments so far (copies).
  #msgOpcode = 0;
  #fragments: Buffer[] | null = null;
  #msgBytes = 0;

  constructor(sink: FrameSink, maxMessageBytes: number) {
    this.#sink = sink;
    this.#maxMessage = maxMessageBytes;
  }

  /** Stopped for good (a close frame or a protocol error was reported). */
  get done(): boolean {
    return this.#state === S_DONE;
  }

  /** Read `buf[0..len]` (valid only during this call). */
  execute(buf: Buffer, len: number = buf.length): void {
    if (buf !== lastRead) {
      lastRead = buf;
      lastMem = buf.buffer;
      lastBase = buf.byteOffset;
    }
    let off = 0;
    while (off < len && this.#state !== S_DONE) {
      if (this.#state === S_HEAD) {
        if (this.#headLen === 0) {
          const need = headSize(buf, off, len);
          if (need > 0 && off + need <= len) {
            if (!this.#header(buf, off)) return;
            off += need;
          } else {
            off = this.#stashHead(buf, off, len);
            continue;
          }
        } else {
          off = this.#stashHead(buf, off, len);
          continue;
        }
        if (this.#remaining === 0) {
          this.#frameDone(EMPTY, false);
          continue;
        }
        // The whole payload is in this read and needs no joining: hand on a view of it.
        if (off + this.#remaining <= len && (this.#opcode >= Op.CLOSE || (this.#fin && this.#msgOpcode === 0))) {
          const n = this.#remaining;
          this.#remaining = 0;
          if (this.#opcode >= Op.CLOSE) this.#control(this.#opcode, buf.subarray(off, off + n));
          else this.#message(new Uint8Array(lastMem, lastBase + off, n), this.#opcode === Op.BINARY);
          off += n;
          continue;
        }
        this.#frame = Buffer.allocUnsafe(this.#remaining);
        this.#frameOff = 0;
        this.#state = S_PAYLOAD;
      } else {
        const n = Math.min(this.#remaining, len - off);
        buf.copy(this.#frame!, this.#frameOff, off, off + n);
        this.#frameOff += n;
        this.#remaining -= n;
        off += n;
        if (this.#remaining === 0) {
          const frame = this.#frame!;
          this.#frame = null;
          this.#state = S_HEAD;
          this.#frameDone(frame, true);
        }
      }
    }
  }

  /** Collect header bytes across reads; parse once complete. Returns the new offset in `buf`. */
  #stashHead(buf: Buffer, off: number, len: number): number {
    const head = (this.#head ??= Buffer.allocUnsafe(MAX_HEAD));
    // Take bytes one at a time until the header's size is known and reached (at most 10).
    while (off < len) {
      head[this.#headLen++] = buf[off++]!;
      const need = headSize(head, 0, this.#headLen);
      if (need > 0 && this.#headLen === need) {
        this.#headLen = 0;
        if (!this.#header(head, 0)) return len;
        if (this.#remaining === 0) {
          this.#frameDone(EMPTY, false);
        } else {
          this.#frame = Buffer.allocUnsafe(this.#remaining);
          this.#frameOff = 0;
          this.#state = S_PAYLOAD;
        }
        return off;
      }
    }
    return off;
  }

  /** Check a complete header at `b[o]`; false when it was refused (reported, parser stopped). */
  #header(b: Buffer, o: number): boolean {
    const b0 = b[o]!;
    const b1 = b[o + 1]!;
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    if ((b0 & 0x70) !== 0) return this.#fail(1002, 'RSV bits set without a negotiated extension');
    if ((b1 & 0x80) !== 0) return this.#fail(1002, 'a masked frame from the server');
    let n = b1 & 0x7f;
    if (n === 126) n = b.readUInt16BE(o + 2);
    else if (n === 127) {
      const hi = b.readUInt32BE(o + 2);
      // 2^53 and above cannot be a length here anyway; anything over the limit is 1009 below.
      if (hi > 0x1fffff) return this.#fail(1009, 'frame length out of range');
      n = hi * 0x100000000 + b.readUInt32BE(o + 6);
    }
    if (opcode >= Op.CLOSE) {
      if (opcode > Op.PONG) return this.#fail(1002, `reserved opcode ${opcode}`);
      if (!fin) return this.#fail(1002, 'a fragmented control frame');
      if (n > 125) return this.#fail(1002, 'a control frame over 125 bytes');
    } else if (opcode === Op.CONT) {
      if (this.#msgOpcode === 0) return this.#fail(1002, 'a continuation frame with no message to continue');
    } else if (opcode === Op.TEXT || opcode === Op.BINARY) {
      if (this.#msgOpcode !== 0) return this.#fail(1002, 'a new message inside a fragmented one');
    } else {
      return this.#fail(1002, `reserved opcode ${opcode}`);
    }
    if (opcode < Op.CLOSE && this.#msgBytes + n > this.#maxMessage) return this.#fail(1009, 'message over SLUICE_WS_MAX_MESSAGE_BYTES');
    this.#fin = fin;
    this.#opcode = opcode;
    this.#remaining = n;
    return true;
  }

  /** A frame's payload is complete; `owned`: it is a buffer of its own, not a view of the read. */
  #frameDone(payload: Buffer, owned: boolean): void {
    const opcode = this.#opcode;
    if (opcode >= Op.CLOSE) return this.#control(opcode, payload);
    if (opcode !== Op.CONT && this.#fin) return this.#message(payload, opcode === Op.BINARY);
    // A fragment: keep a copy (a view into the read buffer would not survive the next read).
    if (opcode !== Op.CONT) {
      this.#msgOpcode = opcode;
      this.#fragments = [];
    }
    this.#fragments!.push(owned || payload.length === 0 ? payload : Buffer.from(payload));
    this.#msgBytes += payload.length;
    if (!this.#fin) return;
    const whole = this.#fragments!.length === 1 ? this.#fragments![0]! : Buffer.concat(this.#fragments!, this.#msgBytes);
    const binary = this.#msgOpcode === Op.BINARY;
    this.#fragments = null;
    this.#msgOpcode = 0;
    this.#msgBytes = 0;
    this.#message(whole, binary);
  }

  #message(data: Uint8Array, binary: boolean): void {
    if (!binary && !isUtf8(data)) {
      this.#fail(1007, 'a text message that is not UTF-8');
      return;
    }
    this.#sink.onMessage(data, binary);
  }

  #control(opcode: number, payload: Buffer): void {
    if (opcode === Op.PING) return this.#sink.onPing(payload);
    if (opcode === Op.PONG) return this.#sink.onPong(payload);
    // Close.
    if (payload.length === 1) return void this.#fail(1002, 'a close frame with a 1-byte payload');
    const code = payload.length === 0 ? 1005 : payload.readUInt16BE(0);
    if (payload.length > 0 && !sendableCode(code)) return void this.#fail(1002, `invalid close code ${code}`);
    const reason = payload.length > 2 ? payload.subarray(2) : EMPTY;
    if (!isUtf8(reason)) return void this.#fail(1007, 'a close reason that is not UTF-8');
    this.#state = S_DONE;
    this.#sink.onClose(code, reason);
  }

  #fail(code: number, why: string): false {
    this.#state = S_DONE;
    this.#frame = null;
    this.#fragments = null;
    this.#sink.onFrameError(code, why);
    return false;
  }
}

/** Size of the header starting at b[o] (b valid up to `len`), or 0 when its first 2 bytes are not there yet. */
function headSize(b: Buffer, o: number, len: number): number {
  if (len - o < 2) return 0;
  const n = b[o + 1]! & 0x7f;
  return n < 126 ? 2 : n === 126 ? 4 : 10;
}
