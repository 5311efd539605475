// Frames Sluice sends a backend (RFC 6455 §5, client-to-server side): FIN set (messages are never
// fragmented here: uWS hands Sluice each client message whole), no RSV bits, masked.
//
// Masking: each frame gets a fresh random key, as §5.3 requires of a client. A zero key would be
// accepted by any server and would make masking a plain copy, but masking exists so that a hostile
// page cannot choose the bytes a WebSocket-unaware intermediary sees (§10.3), and Sluice cannot
// know there is none between it and a backend. The cost is small: the payload must be copied out of
// uWS's buffer anyway (it is only valid during the callback), and the XOR follows the copy, a word
// at a time: 61 ns for a 64-byte frame against 13 ns for the copy alone, 0.21 ms against 0.04 ms
// for 1 MiB (bench/ws-mask.js, machine quiet), about 1% of a core at 150k messages/s.
// Keys come from a pool filled by one randomFillSync call per 2048 frames.

import { randomFillSync } from 'node:crypto';

const KEY_POOL = Buffer.allocUnsafe(8192);
let keyOff = KEY_POOL.length;

/** Bytes a frame of `n` payload bytes takes: header, extended length, masking key, payload. */
export function frameSize(n: number): number {
  return (n < 126 ? 6 : n < 65536 ? 8 : 14) + n;
}

/**
 * Write one masked frame at dst[off] (room checked by the caller: frameSize(payload.length)):
 * `opcode`, then `prefix` (up to 2 bytes, a close code; -1 for none) and `payload`. Returns the
 * offset after it. `words`: a Uint32Array over all of dst's ArrayBuffer, when the caller has one.
 */
export function writeFrame(dst: Buffer, off: number, opcode: number, prefix: number, payload: Uint8Array, words: Uint32Array | null = null): number {
  const n = payload.length + (prefix >= 0 ? 2 : 0);
  dst[off++] = 0x80 | opcode;
  if (n < 126) {
    dst[off++] = 0x80 | n;
  } else if (n < 65536) {
    dst[off++] = 0x80 | 126;
    dst[off++] = n >>> 8;
    dst[off++] = n & 0xff;
  } else {
    dst[off++] = 0x80 | 127;
    dst.writeUInt32BE(Math.floor(n / 0x100000000), off);
    dst.writeUInt32BE(n >>> 0, off + 4);
    off += 8;
  }
  if (keyOff === KEY_POOL.length) {
    randomFillSync(KEY_POOL);
    keyOff = 0;
  }
  const k0 = (dst[off++] = KEY_POOL[keyOff]!);
  const k1 = (dst[off++] = KEY_POOL[keyOff + 1]!);
  const k2 = (dst[off++] = KEY_POOL[keyOff + 2]!);
  const k3 = (dst[off++] = KEY_POOL[keyOff + 3]!);
  keyOff += 4;
  if (prefix >= 0) {
    dst[off++] = (prefix >>> 8) ^ k0;
    dst[off++] = (prefix & 0xff) ^ k1;
    // The payload continues the key sequence at its third byte.
    return maskCopy(payload, dst, words, off, k2, k3, k0, k1);
  }
  return maskCopy(payload, dst, words, off, k0, k1, k2, k3);
}

/**
 * Payloads from this size are copied with memcpy and masked in place a word at a time; shorter ones
 * byte by byte. (Gathering each word from four source bytes instead of the copy was tried: slower
 * at every size from 16 to 128 bytes, bench/ws-mask.js.)
 */
const WORDWISE_FROM = 32;
/** Word-wise masking builds its 32-bit key in memory order, which the code below assumes is little-endian. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/**
 * Without a word view from the caller (write-batch.ts scratch buffers carry one): the view of the
 * last destination written to, found by the destination's identity (reading `.buffer` costs a call
 * into the runtime each time). Views of destinations larger than this (a frame written alone) are
 * not kept, so they do not hold a large buffer alive.
 */
const CACHED_VIEW_MAX = 64 * 1024;
let viewFor: Uint8Array | null = null;
let lastView: Uint32Array<ArrayBufferLike> = new Uint32Array(0);

function wordsOf(dst: Buffer): Uint32Array<ArrayBufferLike> {
  if (viewFor === dst) return lastView;
  const mem = dst.buffer;
  const view = new Uint32Array(mem, 0, mem.byteLength >>> 2);
  if (mem.byteLength <= CACHED_VIEW_MAX) {
    viewFor = dst;
    lastView = view;
  }
  return view;
}

/** dst[off..] = src XOR the key repeated; returns the offset after it. */
function maskCopy(src: Uint8Array, dst: Buffer, words: Uint32Array<ArrayBufferLike> | null, off: number, k0: number, k1: number, k2: number, k3: number): number {
  const n = src.length;
  if (n < WORDWISE_FROM || !LITTLE_ENDIAN) {
    const whole = n & ~3;
    let i = 0;
    for (; i < whole; i += 4) {
      dst[off + i] = src[i]! ^ k0;
      dst[off + i + 1] = src[i + 1]! ^ k1;
      dst[off + i + 2] = src[i + 2]! ^ k2;
      dst[off + i + 3] = src[i + 3]! ^ k3;
    }
    if (i < n) dst[off + i] = src[i]! ^ k0;
    if (i + 1 < n) dst[off + i + 1] = src[i + 1]! ^ k1;
    if (i + 2 < n) dst[off + i + 2] = src[i + 2]! ^ k2;
    return off + n;
  }
  const view = words ?? wordsOf(dst);
  dst.set(src, off);
  // Bytes one at a time up to a 4-byte boundary of the underlying memory (at most 3), then whole
  // words with the key rotated to that phase, then the last bytes.
  const base = dst.byteOffset + off;
  let i = 0;
  while (((base + i) & 3) !== 0) {
    dst[off + i] ^= keyByte(i, k0, k1, k2, k3);
    i++;
  }
  const key = (keyByte(i, k0, k1, k2, k3) | (keyByte(i + 1, k0, k1, k2, k3) << 8) | (keyByte(i + 2, k0, k1, k2, k3) << 16) | (keyByte(i + 3, k0, k1, k2, k3) << 24)) >>> 0;
  const first = (base + i) >>> 2;
  const last = first + ((n - i) >>> 2);
  // Uint32Array: V8 compiles this loop about twice as fast as over an Int32Array.
  for (let w = first; w < last; w++) view[w] = view[w]! ^ key;
  for (i += (last - first) * 4; i < n; i++) dst[off + i] ^= keyByte(i, k0, k1, k2, k3);
  return off + n;
}

function keyByte(i: number, k0: number, k1: number, k2: number, k3: number): number {
  const p = i & 3;
  return p === 0 ? k0 : p === 1 ? k1 : p === 2 ? k2 : k3;
}
