// 32-bit hashing for affinity keys and for building consistent-hash tables.
//
// MurmurHash3 x86_32 (Austin Appleby, public domain reference): good avalanche, one multiply per
// 4 bytes, and a published set of test vectors to check against. `hashString` hashes a JS string's
// UTF-16LE code units, two per 32-bit block, straight from charCodeAt: no encoding step, no
// allocation, and the same result in every thread and on every Sluice host (which is what keeps
// ring hash and Maglev consistent across a fleet). Not for anything security-related.

/** `PickContext.hash` when the request carries no affinity key. */
export const NO_HASH = -1;

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

import { mix32 } from '../model/hash.js';

export { mix32 };

function scramble(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

function round(h: number, k: number): number {
  h ^= scramble(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/**
 * MurmurHash3 x86_32 of `s` as UTF-16LE bytes (equal to hashBytes(Buffer.from(s, 'utf16le'))).
 * Unsigned, so it never collides with NO_HASH.
 */
export function hashString(s: string, seed = 0): number {
  const n = s.length;
  let h = seed | 0;
  let i = 0;
  for (; i + 1 < n; i += 2) h = round(h, s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16));
  if (i < n) h ^= scramble(s.charCodeAt(i));
  return mix32(h ^ (n * 2));
}

/** MurmurHash3 x86_32 of `bytes[start, end)` (for keys that arrive as bytes, e.g. a raw address). */
export function hashBytes(bytes: Uint8Array, seed = 0, start = 0, end = bytes.length): number {
  let h = seed | 0;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    h = round(h, bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
  }
  const rest = end - i;
  if (rest > 0) {
    let k = bytes[i]!;
    if (rest > 1) k |= bytes[i + 1]! << 8;
    if (rest > 2) k |= bytes[i + 2]! << 16;
    h ^= scramble(k);
  }
  return mix32(h ^ (end - start));
}
