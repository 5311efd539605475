// A 32-bit string hash for sticky splits: FNV-1a over UTF-16 code units, then MurmurHash3's fmix32
// finaliser, because FNV alone leaves short keys that differ in the last character clustered,
// and a split reads the hash as a fraction of 2^32. Hashes a range in place: no substring.

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

export function hashRange(text: string, start: number, end: number): number {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return mix32(h);
}

/** MurmurHash3's fmix32 finaliser: every input bit affects every output bit. Unsigned result. */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function hashString(text: string): number {
  return hashRange(text, 0, text.length);
}
