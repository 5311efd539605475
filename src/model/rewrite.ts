// Path and host rewrites of a route, applied to what is sent upstream (the query passes unchanged):
//   strip_prefix   "/v1" turns /v1/users into /users and /v1 into /
//   prefix_rewrite replaces what match.path_prefix (or match.path) matched: prefix /v1, rewrite
//                  /api/v2 turns /v1/users into /api/v2/users (a doubled "/" at the seam is merged)
//   regex_rewrite  replaces every match of a pattern; \1 or $1 (0 to 9) insert captures, \\ and $$
//                  a literal \ or $
// A result that does not start with "/" gets one, so the upstream always sees an origin-form path.

import { pathProblem, prefixMatches } from './path.js';
import { captureCount, compileSearch, regexProblem } from './regex.js';
import type { PathRewriteSpec, RouteMatch } from './route.js';

export interface PathRewriter {
  rewrite(path: string): string;
}

/** Literal parts and capture numbers, in order. */
type Substitution = readonly (string | number)[];

export function pathRewriteProblems(spec: PathRewriteSpec, match: RouteMatch): string[] {
  switch (spec.kind) {
    case 'strip-prefix': {
      const p = pathProblem(spec.prefix);
      return p === null ? [] : [`strip_prefix: ${p}`];
    }
    case 'prefix': {
      const problems: string[] = [];
      if (match.pathPrefix === undefined && match.path === undefined) {
        problems.push('prefix_rewrite: needs match.path_prefix or match.path (the part it replaces)');
      }
      const p = spec.replacement === '' ? null : pathProblem(spec.replacement);
      if (p !== null) problems.push(`prefix_rewrite: ${p}`);
      return problems;
    }
    case 'regex': {
      const p = regexProblem(spec.pattern);
      if (p !== null) return [`regex_rewrite.pattern: ${p}`];
      const parsed = parseSubstitution(spec.substitution, captureCount(spec.pattern));
      return typeof parsed === 'string' ? [`regex_rewrite.substitution: ${parsed}`] : [];
    }
  }
}

export class RewriteError extends Error {
  override readonly name = 'RewriteError';
}

/** Throws RewriteError when pathRewriteProblems finds any. */
export function compilePathRewrite(spec: PathRewriteSpec | undefined, match: RouteMatch): PathRewriter | null {
  if (spec === undefined) return null;
  const problems = pathRewriteProblems(spec, match);
  if (problems.length > 0) throw new RewriteError(problems.join('; '));
  switch (spec.kind) {
    case 'strip-prefix':
      return new StripPrefix(spec.prefix);
    case 'prefix':
      return new PrefixRewrite(match.pathPrefix ?? match.path ?? '', spec.replacement);
    case 'regex':
      return new RegexRewrite(spec.pattern, parseSubstitution(spec.substitution, captureCount(spec.pattern)) as Substitution);
  }
}

class StripPrefix implements PathRewriter {
  readonly #prefix: string;
  constructor(prefix: string) {
    this.#prefix = prefix;
  }
  rewrite(path: string): string {
    if (!prefixMatches(path, this.#prefix)) return path;
    return rooted(path.slice(this.#prefix.length));
  }
}

/** Replace `matched` (the route's prefix or exact path) at the start of the path. */
export function replacePrefix(path: string, matched: string, replacement: string): string {
  if (!path.startsWith(matched)) return path;
  let rest = path.slice(matched.length);
  if (replacement.endsWith('/') && rest.startsWith('/')) rest = rest.slice(1);
  return rooted(replacement + rest);
}

class PrefixRewrite implements PathRewriter {
  readonly #matched: string;
  readonly #replacement: string;
  constructor(matched: string, replacement: string) {
    this.#matched = matched;
    this.#replacement = replacement;
  }
  rewrite(path: string): string {
    return replacePrefix(path, this.#matched, this.#replacement);
  }
}

class RegexRewrite implements PathRewriter {
  readonly #re: RegExp;
  readonly #substitution: Substitution;
  constructor(pattern: string, substitution: Substitution) {
    this.#re = compileSearch(pattern);
    this.#substitution = substitution;
  }
  rewrite(path: string): string {
    const parts = this.#substitution;
    // A function replacer: captures are inserted verbatim, never re-read as $-patterns.
    const out = path.replace(this.#re, (...args: unknown[]) => {
      let s = '';
      for (const part of parts) s += typeof part === 'string' ? part : ((args[part] as string | undefined) ?? '');
      return s;
    });
    return rooted(out);
  }
}

function rooted(path: string): string {
  return path.startsWith('/') ? path : `/${path}`;
}

const SUBSTITUTION_FORBIDDEN = /[\u0000-\u0020\u007f?#]/;

/** Parts of a substitution, or why it is refused. */
function parseSubstitution(text: string, groups: number): Substitution | string {
  if (SUBSTITUTION_FORBIDDEN.test(text)) return `${JSON.stringify(text)} contains a space, control character, ? or # (a rewrite changes only the path)`;
  const parts: (string | number)[] = [];
  let literal = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== '\\' && c !== '$') {
      literal += c;
      continue;
    }
    const next = text[i + 1] ?? '';
    if (next === c) {
      literal += c;
      i++;
    } else if (next >= '0' && next <= '9') {
      const n = Number(next);
      if (n > groups) return `${c}${n} names a capture the pattern does not have (it has ${groups})`;
      if (literal !== '') parts.push(literal);
      literal = '';
      parts.push(n);
      i++;
    } else {
      return `${c} must be followed by a digit (a capture) or doubled (a literal ${c})`;
    }
  }
  if (literal !== '') parts.push(literal);
  return parts;
}

// Host (RFC 1123 name or IPv4), or a bracketed IPv6 address, with an optional port.
const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV6 = /^\[[0-9A-Fa-f:.]+\]$/;

/** host, host:port or [ipv6]:port as it may appear in a Host header. */
export function hostProblem(host: string): string | null {
  const m = /^(.*?)(?::(\d{1,5}))?$/.exec(host);
  const name = m?.[1] ?? '';
  const port = m?.[2];
  const expected = `${JSON.stringify(host)} is not a host, host:port or [ipv6]:port`;
  if (host.length > 255 || !(HOST_NAME.test(name) || IPV6.test(name))) return expected;
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return `${expected} (port from 1 to 65535)`;
  return null;
}
