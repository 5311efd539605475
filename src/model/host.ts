// Host patterns and the host index. A pattern is an exact name ("api.example.com") or a wildcard
// ("*.example.com": any name ending in ".example.com" with at least one more label, at any depth,
// not example.com itself). The request's Host is compared without its port and without regard to
// case. Lookup allocates nothing for a lower-case Host without a port (the common case): exact names
// are one Map lookup, wildcard suffixes are found by hashing the Host backwards in place and
// stopping at each dot.

const DOT = 0x2e;
const COLON = 0x3a;
const OPEN_BRACKET = 0x5b;
const HOST_NAME = /^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)*$/;
const IPV6 = /^\[[0-9a-f:.]+\]$/;

/** Why `given` is not an exact host or "*.suffix" (compared lower-cased). */
export function hostPatternProblem(given: string): string | null {
  const pattern = given.toLowerCase();
  if (pattern === '*') return '"*" matches every host: leave host out instead';
  const name = pattern.startsWith('*.') ? pattern.slice(2) : pattern;
  if (name.includes('*')) return `${JSON.stringify(pattern)}: a wildcard is only allowed as a leading "*." label`;
  if (/:\d+$/.test(name) && !name.endsWith(']')) return `${JSON.stringify(pattern)}: give the host without a port (the port is ignored when matching)`;
  if (name.length > 253 || !(HOST_NAME.test(name) || (!pattern.startsWith('*.') && IPV6.test(name)))) {
    return `${JSON.stringify(pattern)} is not a host name, IP address or "*.suffix" wildcard`;
  }
  return null;
}

/**
 * Lower-case, port and trailing dot removed. Returns `raw` itself (no new string) when there is
 * nothing to change.
 */
export function normaliseHost(raw: string): string {
  const bracketed = raw.charCodeAt(0) === OPEN_BRACKET;
  let clean = raw.length === 0 || raw.charCodeAt(raw.length - 1) !== DOT;
  for (let i = 0; clean && i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if ((c >= 0x41 && c <= 0x5a) || (c === COLON && !bracketed)) clean = false;
  }
  if (clean && !bracketed) return raw;
  let name = raw;
  if (bracketed) {
    const close = raw.indexOf(']');
    if (close > 0) name = raw.slice(0, close + 1);
  } else {
    const colon = raw.indexOf(':');
    if (colon >= 0) name = raw.slice(0, colon);
  }
  if (name.endsWith('.')) name = name.slice(0, -1);
  return name.toLowerCase();
}

/** Step of the backward suffix hash (FNV-1a style); the same at build and at lookup. */
function step(h: number, c: number): number {
  return Math.imul(h ^ c, 0x01000193);
}
const SEED = 0x811c9dc5 | 0;

function suffixHash(suffix: string): number {
  let h = SEED;
  for (let i = suffix.length - 1; i >= 0; i--) h = step(h, suffix.charCodeAt(i));
  return h;
}

interface Wildcard<B> {
  /** ".example.com" */
  readonly suffix: string;
  readonly chain: readonly B[];
}

/**
 * Maps a request host to the chain of buckets whose routes may match it: the bucket of the exact
 * name, those of every wildcard that covers it, and the bucket of routes without a host matcher.
 * Chains are built once, so a lookup returns a stored array.
 */
export class HostIndex<B> {
  readonly #exact = new Map<string, readonly B[]>();
  readonly #wildcards = new Map<number, Wildcard<B>[]>();
  readonly #none: readonly B[];

  /** `groups`: bucket per pattern (lower-case); key null = routes with no host matcher. */
  constructor(groups: ReadonlyMap<string | null, B>) {
    const any = groups.get(null);
    this.#none = any === undefined ? [] : [any];
    const wildcards: [string, B][] = [];
    for (const [pattern, bucket] of groups) if (pattern !== null && pattern.startsWith('*.')) wildcards.push([pattern.slice(1), bucket]);
    /** Buckets of the wildcards matching a name (or a narrower wildcard's suffix), then the catch-all. */
    const covering = (name: string): B[] => {
      const out: B[] = [];
      for (const [suffix, bucket] of wildcards) if (name.length > suffix.length && name.endsWith(suffix)) out.push(bucket);
      return out.concat(this.#none);
    };
    for (const [pattern, bucket] of groups) {
      if (pattern === null) continue;
      if (pattern.startsWith('*.')) {
        const suffix = pattern.slice(1);
        // Every wildcard matching a host under this one: this one and those with shorter suffixes.
        const chain = [bucket, ...covering(`*${suffix}`).filter((b) => b !== bucket)];
        const h = suffixHash(suffix);
        const list = this.#wildcards.get(h) ?? [];
        list.push({ suffix, chain });
        this.#wildcards.set(h, list);
      } else {
        this.#exact.set(pattern, [bucket, ...covering(pattern)]);
      }
    }
  }

  /**
   * No route names a host: every request gets the host-less chain, and the caller need not
   * normalise the Host at all (a slice per request whenever the client sends a port).
   */
  get hostless(): boolean {
    return this.#exact.size === 0 && this.#wildcards.size === 0;
  }

  /** The chain every host gets when the index is hostless. */
  get anyHost(): readonly B[] {
    return this.#none;
  }

  /** `host` already normalised (normaliseHost). */
  chain(host: string): readonly B[] {
    const exact = this.#exact.get(host);
    if (exact !== undefined) return exact;
    if (this.#wildcards.size === 0) return this.#none;
    // Longest matching suffix wins: its chain holds every shorter one that matches.
    let found: readonly B[] = this.#none;
    let h = SEED;
    for (let i = host.length - 1; i >= 1; i--) {
      const c = host.charCodeAt(i);
      h = step(h, c);
      if (c !== DOT) continue;
      const list = this.#wildcards.get(h);
      if (list === undefined) continue;
      for (let k = 0; k < list.length; k++) {
        const w = list[k];
        if (w.suffix.length === host.length - i && host.endsWith(w.suffix)) found = w.chain;
      }
    }
    return found;
  }
}
