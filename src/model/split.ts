// Weighted splits between pools (canaries, blue/green). Per request the caller passes a random
// number in [0, 1); with a split key (a header or a cookie) whose value the request carries, the
// value's hash takes its place, so one user keeps landing in the same pool while weights stay put.
// Deterministic given its inputs, so tests can check ratios without a real random source.

import { hashRange } from './hash.js';
import type { SplitKey, SplitTarget } from './route.js';

export interface HeaderSource {
  /** Lower-case name; '' when absent. */
  header(name: string): string;
}

/** Enough for any canary ladder; more targets would be a pool, not a split. */
export const MAX_SPLIT_TARGETS = 64;
const TWO_32 = 0x1_0000_0000;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export function splitProblems(targets: readonly SplitTarget[], key: SplitKey | null): string[] {
  const problems: string[] = [];
  if (targets.length === 0) problems.push('needs at least one { pool, weight }');
  if (targets.length > MAX_SPLIT_TARGETS) problems.push(`at most ${MAX_SPLIT_TARGETS} targets`);
  const seen = new Map<string, number>();
  let total = 0;
  targets.forEach((t, i) => {
    if (!(Number.isFinite(t.weight) && t.weight >= 0 && t.weight <= 1_000_000)) problems.push(`[${i}].weight: ${t.weight} is not a number from 0 to 1000000`);
    else total += t.weight;
    const first = seen.get(t.pool);
    if (first !== undefined) problems.push(`[${i}].pool: "${t.pool}" is already target ${first}`);
    else seen.set(t.pool, i);
  });
  if (targets.length > 0 && total === 0) problems.push('the weights add up to 0: nothing could be chosen');
  if (key !== null && !TOKEN.test(key.name)) problems.push(`split_key: ${JSON.stringify(key.name)} is not a header or cookie name`);
  return problems;
}

export class SplitError extends Error {
  override readonly name = 'SplitError';
}

export class SplitChooser {
  readonly targets: readonly SplitTarget[];
  readonly key: SplitKey | null;
  /** Running sums of the weights: target i owns [cumulative[i-1], cumulative[i]). */
  readonly #cumulative: Float64Array;
  readonly #total: number;

  constructor(targets: readonly SplitTarget[], key: SplitKey | null) {
    const problems = splitProblems(targets, key);
    if (problems.length > 0) throw new SplitError(problems.join('; '));
    this.targets = targets;
    this.key = key === null ? null : key.kind === 'header' ? { kind: 'header', name: key.name.toLowerCase() } : key;
    this.#cumulative = new Float64Array(targets.length);
    let sum = 0;
    targets.forEach((t, i) => (this.#cumulative[i] = sum += t.weight));
    this.#total = sum;
  }

  /** The target owning point u of [0, 1). Zero-weight targets own nothing. */
  indexAt(u: number): number {
    const x = u * this.#total;
    const c = this.#cumulative;
    for (let i = 0; i < c.length; i++) if (x < c[i]) return i;
    // u rounding up to 1: the last target with any weight.
    for (let i = c.length - 1; i > 0; i--) if (this.targets[i].weight > 0) return i;
    return 0;
  }

  /** The key's hash as a point of [0, 1), or -1 when the request does not carry the key. */
  stickyPoint(headers: HeaderSource): number {
    const key = this.key;
    if (key === null) return -1;
    if (key.kind === 'header') {
      const value = headers.header(key.name);
      return value === '' ? -1 : hashRange(value, 0, value.length) / TWO_32;
    }
    const hash = cookieValueHash(headers.header('cookie'), key.name);
    return hash < 0 ? -1 : hash / TWO_32;
  }

  /** Index of the chosen target; `random` is in [0, 1) and used when the split is not sticky for this request. */
  choose(headers: HeaderSource, random: number): number {
    const sticky = this.stickyPoint(headers);
    return this.indexAt(sticky >= 0 ? sticky : random);
  }

  /** Name of the chosen pool. */
  pick(headers: HeaderSource, random: number): string {
    return this.targets[this.choose(headers, random)].pool;
  }
}

/**
 * Hash of cookie `name`'s value in a Cookie header ("a=1; b=2"), read in place; -1 when absent or
 * empty. A value in double quotes is hashed without them.
 */
export function cookieValueHash(header: string, name: string): number {
  const n = header.length;
  let i = 0;
  while (i < n) {
    while (i < n && (header.charCodeAt(i) === 0x20 || header.charCodeAt(i) === 0x09)) i++;
    let end = header.indexOf(';', i);
    if (end < 0) end = n;
    const eq = header.indexOf('=', i);
    if (eq >= 0 && eq < end && eq - i === name.length && header.startsWith(name, i)) {
      let start = eq + 1;
      let stop = end;
      while (stop > start && (header.charCodeAt(stop - 1) === 0x20 || header.charCodeAt(stop - 1) === 0x09)) stop--;
      if (stop - start >= 2 && header.charCodeAt(start) === 0x22 && header.charCodeAt(stop - 1) === 0x22) {
        start++;
        stop--;
      }
      return stop > start ? hashRange(header, start, stop) : -1;
    }
    i = end + 1;
  }
  return -1;
}
