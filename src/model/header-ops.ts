// Header edits of a route (request_headers, response_headers): set, add, remove. Compiled once into
// the two things a data path needs while it copies headers through: the set of incoming names to
// drop (removed or set) and the pairs to append (set, then add). Names are lower-case and values
// are checked here, at load, so nothing per request can smuggle a CR/LF into a head.

import type { HeaderOpsSpec, HeaderPair } from './route.js';

export type HeaderSide = 'request' | 'response';

export interface HeaderOps {
  /** Incoming headers with these (lower-case) names are not passed on. */
  readonly drops: ReadonlySet<string>;
  /** Written after the passed-on headers, in order. */
  readonly append: readonly HeaderPair[];
  readonly empty: boolean;
}

export const NO_HEADER_OPS: HeaderOps = Object.freeze({ drops: new Set<string>(), append: [], empty: true });

// RFC 9110 token: what a field name may contain.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: no control characters but HTAB (CR, LF and NUL above all: they split heads).
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;
/** Longer than any sane single header; Sluice's whole head limit defaults to 16 KiB. */
export const MAX_HEADER_VALUE_CHARS = 8192;

/** Framing and connection headers Sluice owns; a route may not write them. */
const OWNED: Record<HeaderSide, ReadonlyMap<string, string>> = {
  request: new Map([
    ['host', 'use host_rewrite'],
    ['content-length', 'Sluice frames the body'],
    ['transfer-encoding', 'Sluice frames the body'],
    ['connection', 'a hop-by-hop header'],
    ['keep-alive', 'a hop-by-hop header'],
    ['proxy-connection', 'a hop-by-hop header'],
    ['te', 'a hop-by-hop header'],
    ['trailer', 'a hop-by-hop header'],
    ['upgrade', 'a hop-by-hop header'],
    ['expect', 'Sluice answers 100-continue itself'],
  ]),
  response: new Map([
    ['content-length', 'Sluice frames the body'],
    ['transfer-encoding', 'Sluice frames the body'],
    ['connection', 'a hop-by-hop header'],
    ['keep-alive', 'a hop-by-hop header'],
    ['proxy-connection', 'a hop-by-hop header'],
    ['trailer', 'a hop-by-hop header'],
    ['upgrade', 'a hop-by-hop header'],
  ]),
};

export function headerNameProblem(name: string, side: HeaderSide): string | null {
  if (!TOKEN.test(name)) return `${JSON.stringify(name)} is not a header name (letters, digits and !#$%&'*+-.^_\`|~)`;
  const owned = OWNED[side].get(name.toLowerCase());
  return owned === undefined ? null : `${JSON.stringify(name)} cannot be changed by a route (${owned})`;
}

export function headerValueProblem(value: string): string | null {
  if (CONTROL.test(value)) return `${JSON.stringify(value)} contains a control character (CR, LF, NUL or similar)`;
  if (value.length > MAX_HEADER_VALUE_CHARS) return `a value longer than ${MAX_HEADER_VALUE_CHARS} characters`;
  return null;
}

/** Every problem, each prefixed with where it is ("set.x-env", "remove[1]"). */
export function headerOpsProblems(spec: HeaderOpsSpec, side: HeaderSide): string[] {
  const problems: string[] = [];
  const pairs = (list: readonly HeaderPair[] | undefined, key: string) => {
    for (const { name, value } of list ?? []) {
      const p = headerNameProblem(name, side) ?? headerValueProblem(value);
      if (p !== null) problems.push(`${key}.${name}: ${p}`);
    }
  };
  pairs(spec.set, 'set');
  pairs(spec.add, 'add');
  const setNames = new Set((spec.set ?? []).map((p) => p.name.toLowerCase()));
  (spec.remove ?? []).forEach((name, i) => {
    const p = headerNameProblem(name, side);
    if (p !== null) problems.push(`remove[${i}]: ${p}`);
    else if (setNames.has(name.toLowerCase())) problems.push(`remove[${i}]: ${JSON.stringify(name)} is also set (set already replaces it)`);
  });
  return problems;
}

export class HeaderOpsError extends Error {
  override readonly name = 'HeaderOpsError';
  readonly problems: readonly string[];
  constructor(side: HeaderSide, problems: string[]) {
    super(`${side}_headers: ${problems.join('; ')}`);
    this.problems = problems;
  }
}

/** Throws HeaderOpsError when headerOpsProblems finds any. */
export function compileHeaderOps(spec: HeaderOpsSpec | undefined, side: HeaderSide): HeaderOps {
  if (spec === undefined) return NO_HEADER_OPS;
  const problems = headerOpsProblems(spec, side);
  if (problems.length > 0) throw new HeaderOpsError(side, problems);
  const lower = (p: HeaderPair): HeaderPair => ({ name: p.name.toLowerCase(), value: p.value });
  const set = (spec.set ?? []).map(lower);
  const add = (spec.add ?? []).map(lower);
  const drops = new Set([...(spec.remove ?? []).map((n) => n.toLowerCase()), ...set.map((p) => p.name)]);
  const append = [...set, ...add];
  if (drops.size === 0 && append.length === 0) return NO_HEADER_OPS;
  return { drops, append, empty: false };
}

/** The edited list (names lower-cased), for --explain and tests; the data path streams instead. */
export function applyHeaderOps(ops: HeaderOps, headers: readonly HeaderPair[]): HeaderPair[] {
  const out: HeaderPair[] = [];
  for (const h of headers) {
    const name = h.name.toLowerCase();
    if (!ops.drops.has(name)) out.push({ name, value: h.value });
  }
  out.push(...ops.append);
  return out;
}
