// The matchers a route index cannot answer by lookup: methods, headers, query parameters, and the
// path regex. Each compiles to a small check object at load; a check reads the request view and
// allocates nothing, except a query value that is percent-encoded (decoded to compare, rarely).

import { compileAnchored, regexProblem } from './regex.js';
import type { HeaderMatch, QueryMatch } from './route.js';
import type { RequestView } from './request-view.js';

export interface Check {
  holds(view: RequestView): boolean;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export function methodProblem(method: string): string | null {
  return TOKEN.test(method) ? null : `${JSON.stringify(method)} is not an HTTP method name`;
}

export function headerMatchProblem(m: HeaderMatch): string | null {
  if (!TOKEN.test(m.name)) return `${JSON.stringify(m.name)} is not a header name`;
  const match = m.match;
  switch (match.kind) {
    case 'exact':
    case 'prefix':
      return match.value === '' ? `an empty ${match.kind} value (an empty header counts as absent; use { present: false })` : null;
    case 'regex':
      return regexProblem(match.pattern);
    case 'present':
      return null;
  }
}

export function queryMatchProblem(m: QueryMatch): string | null {
  return m.name === '' ? 'an empty parameter name' : null;
}

export class MethodCheck implements Check {
  readonly #methods: ReadonlySet<string>;
  constructor(methods: readonly string[]) {
    this.#methods = new Set(methods.map((m) => m.toUpperCase()));
  }
  holds(view: RequestView): boolean {
    return this.#methods.has(view.method);
  }
}

export function headerCheck(m: HeaderMatch): Check {
  const name = m.name.toLowerCase();
  const match = m.match;
  switch (match.kind) {
    case 'present': {
      const want = match.present;
      return { holds: (view) => (view.header(name) !== '') === want };
    }
    case 'exact': {
      const value = match.value;
      return { holds: (view) => view.header(name) === value };
    }
    case 'prefix': {
      const value = match.value;
      return { holds: (view) => view.header(name).startsWith(value) };
    }
    case 'regex': {
      const re = compileAnchored(match.pattern);
      return {
        holds: (view) => {
          const v = view.header(name);
          return v !== '' && re.test(v);
        },
      };
    }
  }
}

export class PathRegexCheck implements Check {
  readonly #re: RegExp;
  constructor(pattern: string) {
    this.#re = compileAnchored(pattern);
  }
  holds(view: RequestView): boolean {
    return this.#re.test(view.path);
  }
}

export class QueryCheck implements Check {
  readonly #name: string;
  readonly #value: string;
  constructor(m: QueryMatch) {
    this.#name = m.name;
    this.#value = m.value;
  }
  holds(view: RequestView): boolean {
    return queryHas(view.query, this.#name, this.#value);
  }
}

/**
 * True when some "name=value" pair of a raw query string has this name and value, compared
 * decoded ("a%20b" and "a+b" both equal "a b"). A parameter without "=" has the value ''.
 * Scans in place; decodes only a pair that contains % or +.
 */
export function queryHas(query: string, name: string, value: string): boolean {
  const n = query.length;
  let start = 0;
  while (start < n) {
    let end = query.indexOf('&', start);
    if (end < 0) end = n;
    let eq = query.indexOf('=', start);
    if (eq < 0 || eq > end) eq = end;
    const valueStart = eq < end ? eq + 1 : end;
    if (sameComponent(query, start, eq, name) && sameComponent(query, valueStart, end, value)) return true;
    start = end + 1;
  }
  return false;
}

function sameComponent(text: string, start: number, end: number, want: string): boolean {
  if (end - start === want.length && text.startsWith(want, start)) return true;
  let encoded = false;
  for (let i = start; i < end && !encoded; i++) {
    const c = text.charCodeAt(i);
    encoded = c === 0x25 || c === 0x2b;
  }
  if (!encoded) return false;
  try {
    return decodeURIComponent(text.slice(start, end).replace(/\+/g, ' ')) === want;
  } catch {
    return false; // malformed escape: equal to nothing
  }
}
