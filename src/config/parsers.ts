// Generic building blocks for reading SLUICE_* values: integers and decimals in a range, one of a
// set of names, a keyword alternative, comma-separated lists. A parser never throws; it returns the
// value or what it expected, so env.ts can report every bad variable at once, naming each.

export interface Issue {
  /** The offending text: the whole value, or one item of a list. */
  readonly value: string;
  /** What would have been accepted, phrased to follow "expected", e.g. "an integer from 1 to 64". */
  readonly expected: string;
  /** 1-based position in a comma-separated list, when the issue is about one item. */
  readonly item?: number;
}

export type Parsed<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly issues: readonly Issue[] };

/** Input is already trimmed and non-empty (env.ts substitutes the default for unset or blank). */
export type Parser<T> = (text: string) => Parsed<T>;

export function accept<T>(value: T): Parsed<T> {
  return { ok: true, value };
}

export function reject(value: string, expected: string): Parsed<never> {
  return { ok: false, issues: [{ value, expected }] };
}

// Plain digits only: Number() alone would also take "0x10", "1e3", "-0" and "Infinity".
const DIGITS = /^\d+$/;
const DECIMAL = /^(\d+(\.\d*)?|\.\d+)$/;

/** "an integer from 1 to 64", "a number > 0 and <= 1000", "an integer >= 0". */
function describeRange(noun: string, min: number, max: number, exclusiveMin: boolean): string {
  const low = exclusiveMin ? `> ${min}` : `>= ${min}`;
  if (max >= Number.MAX_SAFE_INTEGER) return `${noun} ${low}`;
  return exclusiveMin ? `${noun} ${low} and <= ${max}` : `${noun} from ${min} to ${max}`;
}

/** Whole number in [min, max]. Precondition: min >= 0 (no variable takes negative numbers). */
export function integer(min: number, max = Number.MAX_SAFE_INTEGER): Parser<number> {
  const expected = describeRange('an integer', min, max, false);
  return (text) => {
    const n = DIGITS.test(text) ? Number(text) : Number.NaN;
    return Number.isSafeInteger(n) && n >= min && n <= max ? accept(n) : reject(text, expected);
  };
}

/** Decimal number in [min, max], or (min, max] with exclusiveMin. Precondition: min >= 0. */
export function decimal(min: number, max: number, exclusiveMin = false): Parser<number> {
  const expected = describeRange('a number', min, max, exclusiveMin);
  return (text) => {
    const n = DECIMAL.test(text) ? Number(text) : Number.NaN;
    const aboveMin = exclusiveMin ? n > min : n >= min;
    return aboveMin && n <= max ? accept(n) : reject(text, expected);
  };
}

/** One of a fixed set of names, matched without regard to case (names are lower-case everywhere). */
export function oneOf<T extends string>(names: readonly T[]): Parser<T> {
  const expected = `one of ${names.join(', ')}`;
  return (text) => {
    const lower = text.toLowerCase();
    const found = names.find((name) => name === lower);
    return found === undefined ? reject(text, expected) : accept(found);
  };
}

/** `keyword` (any case) stands for a computed value; anything else goes to `inner`. */
export function keywordOr<T>(keyword: string, resolve: () => T, inner: Parser<T>): Parser<T> {
  return (text) => {
    if (text.toLowerCase() === keyword) return accept(resolve());
    const parsed = inner(text);
    if (parsed.ok) return parsed;
    return { ok: false, issues: parsed.issues.map((i) => ({ ...i, expected: `${i.expected}, or "${keyword}"` })) };
  };
}

export interface ListOptions<T> {
  /** Most items accepted; checked before any item is parsed. */
  readonly max: number;
  /** When given, two items with the same identity are an error (the later one is reported). */
  readonly identity?: (value: T) => string;
}

/**
 * Comma-separated items, each trimmed; empty items are skipped so a trailing comma is harmless.
 * Every bad item is reported, each with its position, not only the first.
 */
export function listOf<T>(item: Parser<T>, options: ListOptions<T>): Parser<T[]> {
  return (text) => {
    const pieces = text.split(',').map((p) => p.trim()).filter((p) => p !== '');
    if (pieces.length > options.max) {
      return reject(text, `at most ${options.max} comma-separated items (got ${pieces.length})`);
    }
    const values: T[] = [];
    const issues: Issue[] = [];
    const seen = new Map<string, number>();
    pieces.forEach((piece, index) => {
      const position = index + 1;
      const parsed = item(piece);
      if (!parsed.ok) {
        for (const issue of parsed.issues) issues.push({ ...issue, item: position });
        return;
      }
      const id = options.identity?.(parsed.value);
      const first = id === undefined ? undefined : seen.get(id);
      if (first !== undefined) {
        issues.push({ value: piece, expected: `each item once (item ${first} is the same)`, item: position });
        return;
      }
      if (id !== undefined) seen.set(id, position);
      values.push(parsed.value);
    });
    return issues.length > 0 ? { ok: false, issues } : accept(values);
  };
}

/** Trial division: the only caller checks numbers up to ~10^6, so at most ~1000 divisions. */
export function isPrime(n: number): boolean {
  if (n < 2 || !Number.isInteger(n)) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/** A prime in [min, max]; a non-prime in range gets the next prime up as a hint. */
export function prime(min: number, max: number): Parser<number> {
  const expected = `a prime number from ${min} to ${max}`;
  const whole = integer(min, max);
  return (text) => {
    const parsed = whole(text);
    if (!parsed.ok) return reject(text, expected);
    if (isPrime(parsed.value)) return parsed;
    let next = parsed.value + 1;
    while (next <= max && !isPrime(next)) next++;
    return reject(text, next <= max ? `${expected} (next prime up: ${next})` : expected);
  };
}
