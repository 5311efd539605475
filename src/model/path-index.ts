// The routes of one host bucket, indexed by path: exact paths in a Map, prefixes in a radix tree
// walked once along the request path (path regexes too, under the literal text they start with),
// and the rest (no path matcher, or a regex with no literal start) in one list checked last. Each structure keeps routes in table order; a search returns the lowest-index route
// below a limit whose remaining matchers hold, so the caller can combine buckets and still get
// first-match-in-file-order. Nothing is allocated per search.

import type { CompiledRoute } from './compiled-route.js';
import { SLASH } from './path.js';
import { literalPrefix } from './regex.js';
import type { RequestView } from './request-view.js';

class RadixNode {
  label: string;
  children = new Map<number, RadixNode>();
  /** Prefixes ending here with "/", and path regexes starting with this text: any continuation. */
  open: CompiledRoute[] = [];
  /** Prefixes ending here without "/": the path must end here or continue with "/". */
  bounded: CompiledRoute[] = [];
  constructor(label: string) {
    this.label = label;
  }
}

export class PathIndex {
  readonly #exact = new Map<string, CompiledRoute[]>();
  readonly #root = new RadixNode('');
  /** No path matcher, or a path regex (checked with the other matchers). */
  readonly #rest: CompiledRoute[] = [];
  #hasPrefixes = false;

  /** Add in increasing index order (lists stay sorted by index). */
  add(route: CompiledRoute): void {
    const m = route.spec.match;
    if (m.path !== undefined) {
      const list = this.#exact.get(m.path) ?? [];
      list.push(route);
      this.#exact.set(m.path, list);
    } else if (m.pathPrefix !== undefined) {
      const node = this.#insert(m.pathPrefix);
      (m.pathPrefix.endsWith('/') ? node.open : node.bounded).push(route);
      this.#hasPrefixes = true;
    } else {
      // A regex whose matches all start with "/x" can only match paths starting with "/x"; the
      // regex itself is still checked with the route's other matchers.
      const literal = m.pathRegex === undefined ? '' : literalPrefix(m.pathRegex);
      if (literal.length > 1) {
        this.#insert(literal).open.push(route);
        this.#hasPrefixes = true;
      } else {
        this.#rest.push(route);
      }
    }
  }

  /** Lowest-index route with index < limit whose matchers all hold, or null. */
  first(view: RequestView, limit: number): CompiledRoute | null {
    const path = view.path;
    let found: CompiledRoute | null = null;
    let best = limit;
    let r: CompiledRoute | null;
    const exact = this.#exact.size === 0 ? undefined : this.#exact.get(path);
    if (exact !== undefined && (r = firstIn(exact, view, best)) !== null) {
      found = r;
      best = r.index;
    }
    let node: RadixNode | undefined = this.#hasPrefixes ? this.#root : undefined;
    let pos = 0;
    while (node !== undefined) {
      if (node.open.length > 0 && (r = firstIn(node.open, view, best)) !== null) {
        found = r;
        best = r.index;
      }
      const boundary = pos === path.length || path.charCodeAt(pos) === SLASH;
      if (boundary && node.bounded.length > 0 && (r = firstIn(node.bounded, view, best)) !== null) {
        found = r;
        best = r.index;
      }
      if (pos >= path.length) break;
      const child: RadixNode | undefined = node.children.get(path.charCodeAt(pos));
      if (child === undefined || !path.startsWith(child.label, pos)) break;
      pos += child.label.length;
      node = child;
    }
    return firstIn(this.#rest, view, best) ?? found;
  }

  #insert(prefix: string): RadixNode {
    let node = this.#root;
    let pos = 0;
    while (pos < prefix.length) {
      const c = prefix.charCodeAt(pos);
      const child = node.children.get(c);
      if (child === undefined) {
        const leaf = new RadixNode(prefix.slice(pos));
        node.children.set(c, leaf);
        return leaf;
      }
      const common = commonLength(child.label, prefix, pos);
      if (common < child.label.length) {
        // Split the edge: node -> middle (shared part) -> child (its remainder).
        const middle = new RadixNode(child.label.slice(0, common));
        child.label = child.label.slice(common);
        middle.children.set(child.label.charCodeAt(0), child);
        node.children.set(c, middle);
        node = middle;
      } else {
        node = child;
      }
      pos += common;
    }
    return node;
  }
}

function commonLength(label: string, text: string, from: number): number {
  let n = 0;
  while (n < label.length && from + n < text.length && label.charCodeAt(n) === text.charCodeAt(from + n)) n++;
  return n;
}

/** First route of an index-sorted list below `limit` whose remaining matchers hold. */
function firstIn(list: readonly CompiledRoute[], view: RequestView, limit: number): CompiledRoute | null {
  for (let i = 0; i < list.length; i++) {
    const r = list[i];
    if (r.index >= limit) return null;
    if (r.holdsRest(view)) return r;
  }
  return null;
}
