// Unreachable routes: a route every request of which an earlier route already takes. Detected when
// each matcher of the earlier route is implied by the later one's (so the earlier one matches at
// least everything the later one does): no host vs any host, a wildcard vs a host under it, a
// shorter path prefix, a subset of methods, an exact header value vs a prefix or presence, ...
// Conservative: it reports only what is certain, never a route that some request could reach;
// overlaps it cannot prove (two different regexes) are left alone.

import { hostMatches } from './compiled-route.js';
import { prefixMatches } from './path.js';
import { compileAnchored } from './regex.js';
import type { HeaderMatch, HeaderMatcher, RouteMatch } from './route.js';

export interface Shadowed {
  /** The unreachable route. */
  readonly index: number;
  /** The first earlier route that matches everything it matches. */
  readonly by: number;
}

/** `routes` must be valid (routeProblems empty); pass null for a route to leave it out. */
export function findShadowed(routes: readonly (RouteMatch | null)[]): Shadowed[] {
  const regexes = new Map<string, RegExp>();
  const regex = (pattern: string) => {
    let re = regexes.get(pattern);
    if (re === undefined) regexes.set(pattern, (re = compileAnchored(pattern)));
    return re;
  };
  const found: Shadowed[] = [];
  for (let j = 1; j < routes.length; j++) {
    const later = routes[j];
    if (later === null) continue;
    for (let i = 0; i < j; i++) {
      const earlier = routes[i];
      if (earlier !== null && covers(earlier, later, regex)) {
        found.push({ index: j, by: i });
        break;
      }
    }
  }
  return found;
}

type RegexOf = (pattern: string) => RegExp;

/** Every request `b` matches, `a` matches too. */
export function covers(a: RouteMatch, b: RouteMatch, regex: RegexOf = compileAnchored): boolean {
  return coversHost(a, b) && coversPath(a, b, regex) && coversMethods(a, b) && coversHeaders(a, b, regex) && coversQuery(a, b);
}

function coversHost(a: RouteMatch, b: RouteMatch): boolean {
  if (a.host === undefined) return true;
  if (b.host === undefined) return false;
  const ah = a.host.toLowerCase();
  const bh = b.host.toLowerCase();
  if (ah === bh) return true;
  if (!ah.startsWith('*.')) return false;
  // A wildcard b's hosts all end in its suffix (".x.example.com"): covered when that suffix is.
  return hostMatches(bh.startsWith('*.') ? bh.slice(1) : bh, ah);
}

function coversPath(a: RouteMatch, b: RouteMatch, regex: RegexOf): boolean {
  if (a.path === undefined && a.pathPrefix === undefined && a.pathRegex === undefined) return true;
  if (a.path !== undefined) return b.path === a.path;
  if (a.pathPrefix !== undefined) {
    // A prefix b covers fewer paths when it is itself a path a's prefix matches ("/v1/x" under "/v1").
    const narrower = b.path ?? b.pathPrefix;
    return narrower !== undefined && prefixMatches(narrower, a.pathPrefix);
  }
  if (b.pathRegex !== undefined) return b.pathRegex === a.pathRegex;
  return b.path !== undefined && regex(a.pathRegex as string).test(b.path);
}

function coversMethods(a: RouteMatch, b: RouteMatch): boolean {
  if (a.methods === undefined) return true;
  if (b.methods === undefined) return false;
  const allowed = new Set(a.methods.map((m) => m.toUpperCase()));
  return b.methods.every((m) => allowed.has(m.toUpperCase()));
}

function coversHeaders(a: RouteMatch, b: RouteMatch, regex: RegexOf): boolean {
  for (const need of a.headers ?? []) {
    const name = need.name.toLowerCase();
    const have = (b.headers ?? []).filter((h: HeaderMatch) => h.name.toLowerCase() === name);
    if (!have.some((h) => implies(h.match, need.match, regex))) return false;
  }
  return true;
}

/** Every value `b` accepts, `a` accepts. */
function implies(b: HeaderMatcher, a: HeaderMatcher, regex: RegexOf): boolean {
  switch (a.kind) {
    case 'present':
      // Every matcher but present:false requires a non-empty value.
      return a.present ? !(b.kind === 'present' && !b.present) : b.kind === 'present' && !b.present;
    case 'exact':
      return b.kind === 'exact' && b.value === a.value;
    case 'prefix':
      return (b.kind === 'exact' || b.kind === 'prefix') && b.value.startsWith(a.value);
    case 'regex':
      return (b.kind === 'regex' && b.pattern === a.pattern) || (b.kind === 'exact' && regex(a.pattern).test(b.value));
  }
}

function coversQuery(a: RouteMatch, b: RouteMatch): boolean {
  return (a.query ?? []).every((q) => (b.query ?? []).some((p) => p.name === q.name && p.value === q.value));
}
