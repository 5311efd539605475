// The compiled route table: routes in file order, indexed by host (exact names, "*." wildcards,
// none) and then by path (exact, prefix tree, the rest). match() looks up the host's chain of
// buckets and asks each for its lowest-index matching route below the best found so far, so the
// answer is always the first route in file order whose matchers all hold, without scanning
// routes that cannot match. Built once per load; lookups only read.

import { CompiledRoute, RouteError } from './compiled-route.js';
import { HostIndex, normaliseHost } from './host.js';
import { PathIndex } from './path-index.js';
import type { RequestView } from './request-view.js';
import type { RouteSpec } from './route.js';

/** What a request that no route matches gets: 404 and x-sluice-error: no-route. */
export const NO_ROUTE = Object.freeze({ status: 404, statusLine: '404 Not Found', errorHeader: 'x-sluice-error', errorValue: 'no-route' });

export class RouteTableError extends Error {
  override readonly name = 'RouteTableError';
  readonly errors: readonly RouteError[];
  constructor(errors: readonly RouteError[]) {
    super(errors.map((e) => e.message).join('\n'));
    this.errors = errors;
  }
}

export class RouteTable {
  /** In file order; routes[i].index === i. */
  readonly routes: readonly CompiledRoute[];
  readonly #hosts: HostIndex<PathIndex>;

  constructor(routes: readonly CompiledRoute[]) {
    this.routes = routes;
    const buckets = new Map<string | null, PathIndex>();
    for (const route of routes) {
      let bucket = buckets.get(route.host);
      if (bucket === undefined) buckets.set(route.host, (bucket = new PathIndex()));
      bucket.add(route);
    }
    this.#hosts = new HostIndex(buckets);
  }

  /** The first route in file order whose matchers all hold, or null (404 no-route). */
  match(view: RequestView): CompiledRoute | null {
    const hosts = this.#hosts;
    const chain = hosts.hostless ? hosts.anyHost : hosts.chain(normaliseHost(view.host));
    let found: CompiledRoute | null = null;
    let limit = this.routes.length;
    for (let i = 0; i < chain.length; i++) {
      const r = chain[i].first(view, limit);
      if (r !== null) {
        found = r;
        limit = r.index;
      }
    }
    return found;
  }

  /** The same answer by trying every route in order: the definition match() is tested against. */
  scan(view: RequestView): CompiledRoute | null {
    for (const route of this.routes) if (route.matches(view)) return route;
    return null;
  }

  byName(name: string): CompiledRoute | undefined {
    return this.routes.find((r) => r.name === name);
  }
}

/** Compile every route; throws RouteTableError naming each bad route (and duplicate names). */
export function compileRoutes(specs: readonly RouteSpec[]): RouteTable {
  const errors: RouteError[] = [];
  const routes: CompiledRoute[] = [];
  const names = new Map<string, number>();
  specs.forEach((spec, index) => {
    const first = names.get(spec.name);
    if (first !== undefined) errors.push(new RouteError(index, spec.name, [`name is already used by routes[${first}]`]));
    else names.set(spec.name, index);
    try {
      routes.push(new CompiledRoute(spec, index));
    } catch (err) {
      if (err instanceof RouteError) errors.push(err);
      else throw err;
    }
  });
  if (errors.length > 0) throw new RouteTableError(errors);
  return new RouteTable(routes);
}
