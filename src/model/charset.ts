// Sets of UTF-16 code units for the regex safety analysis (regex-safety.ts): sorted, disjoint,
// merged [lo, hi] ranges stored flat. Only what the analysis needs: build, union, complement,
// and "do these two share a character".

/** Flat [lo0, hi0, lo1, hi1, ...], sorted and merged. */
export type CharSet = readonly number[];

const MAX_CODE = 0xffff;

export const EMPTY: CharSet = [];
export const ANY: CharSet = [0, MAX_CODE];
export const DIGIT: CharSet = [0x30, 0x39];
export const WORD: CharSet = normalise([0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a]);
/** JavaScript's \s: ASCII white space, NBSP, the Unicode space separators, line terminators, BOM. */
export const SPACE: CharSet = normalise([
  0x09, 0x0d, 0x20, 0x20, 0xa0, 0xa0, 0x1680, 0x1680, 0x2000, 0x200a, 0x2028, 0x2029, 0x202f, 0x202f, 0x205f, 0x205f,
  0x3000, 0x3000, 0xfeff, 0xfeff,
]);
/** JavaScript's `.` without the s flag: anything but a line terminator. */
export const DOT: CharSet = complement([0x0a, 0x0a, 0x0d, 0x0d, 0x2028, 0x2029]);

export function single(code: number): CharSet {
  return [code, code];
}

export function range(lo: number, hi: number): CharSet {
  return [lo, hi];
}

/** Sort and merge overlapping or touching ranges. */
export function normalise(flat: readonly number[]): CharSet {
  const pairs: [number, number][] = [];
  for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i], flat[i + 1]]);
  pairs.sort((a, b) => a[0] - b[0]);
  const out: number[] = [];
  for (const [lo, hi] of pairs) {
    const last = out.length - 1;
    if (last > 0 && lo <= out[last] + 1) out[last] = Math.max(out[last], hi);
    else out.push(lo, hi);
  }
  return out;
}

export function union(a: CharSet, b: CharSet): CharSet {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  return normalise([...a, ...b]);
}

export function complement(a: CharSet): CharSet {
  const out: number[] = [];
  let next = 0;
  for (let i = 0; i < a.length; i += 2) {
    if (a[i] > next) out.push(next, a[i] - 1);
    next = a[i + 1] + 1;
  }
  if (next <= MAX_CODE) out.push(next, MAX_CODE);
  return out;
}

export function intersects(a: CharSet, b: CharSet): boolean {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i + 1] < b[j]) i += 2;
    else if (b[j + 1] < a[i]) j += 2;
    else return true;
  }
  return false;
}
