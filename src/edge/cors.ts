// CORS (the Fetch standard's CORS protocol) per route: preflights (OPTIONS with Origin and
// Access-Control-Request-Method) are answered here without a backend; actual requests from an
// allowed origin get Access-Control-Allow-Origin (and -Credentials, -Expose-Headers) on the
// response. Compiled once per load; the response header lists are built per origin and memoised.

import type { CorsSpec } from '../model/edge.js';

/** Headers a browser may always send (CORS-safelisted), never needing to be listed. */
const SAFELISTED = new Set(['accept', 'accept-language', 'content-language', 'content-type', 'range']);

export type Preflight = { readonly status: number; readonly headers: readonly string[] };

export class Cors {
  readonly #any: boolean;
  readonly #exact: Set<string>;
  readonly #patterns: RegExp[];
  readonly #methods: Set<string>;
  readonly #methodList: string;
  readonly #headers: Set<string>;
  readonly #anyHeader: boolean;
  readonly #spec: CorsSpec;
  readonly #actual = new Map<string, readonly string[]>();

  constructor(spec: CorsSpec) {
    this.#spec = spec;
    this.#any = spec.origins.includes('*');
    this.#exact = new Set(spec.origins.filter((o) => !o.includes('*')).map((o) => o.toLowerCase()));
    this.#patterns = spec.origins.filter((o) => o.includes('*') && o !== '*').map(originPattern);
    this.#methods = new Set(spec.methods);
    this.#methodList = spec.methods.join(', ');
    this.#anyHeader = spec.headers.includes('*');
    this.#headers = new Set(spec.headers);
  }

  allowed(origin: string): boolean {
    if (this.#any) return true;
    const o = origin.toLowerCase();
    if (this.#exact.has(o)) return true;
    for (const p of this.#patterns) if (p.test(o)) return true;
    return false;
  }

  /** The value of Access-Control-Allow-Origin: "*" only for any origin without credentials. */
  #allowOrigin(origin: string): string {
    return this.#any && !this.#spec.credentials ? '*' : origin;
  }

  /** Answer to a preflight from `origin` asking for `method` and `requested` headers. */
  preflight(origin: string, method: string, requested: string): Preflight {
    if (!this.allowed(origin)) return { status: 403, headers: ['vary', 'origin'] };
    if (!this.#methods.has(method) && !SIMPLE_METHODS.has(method)) return { status: 403, headers: ['vary', 'origin'] };
    const asked = requested === '' ? [] : requested.split(',').map((h) => h.trim().toLowerCase()).filter((h) => h !== '');
    if (!this.#anyHeader) for (const h of asked) if (!this.#headers.has(h) && !SAFELISTED.has(h)) return { status: 403, headers: ['vary', 'origin'] };
    const out = ['access-control-allow-origin', this.#allowOrigin(origin), 'access-control-allow-methods', this.#methodList];
    if (asked.length > 0) out.push('access-control-allow-headers', this.#anyHeader && !this.#spec.credentials ? '*' : asked.join(', '));
    if (this.#spec.credentials) out.push('access-control-allow-credentials', 'true');
    if (this.#spec.maxAge >= 0) out.push('access-control-max-age', String(this.#spec.maxAge));
    out.push('vary', 'origin, access-control-request-method, access-control-request-headers');
    return { status: 204, headers: out };
  }

  /** Response headers for an actual request from `origin` (allowed or not: Vary is always right). */
  actual(origin: string): readonly string[] {
    const cached = this.#actual.get(origin);
    if (cached !== undefined) return cached;
    let out: string[];
    if (!this.allowed(origin)) out = ['vary', 'origin'];
    else {
      out = ['access-control-allow-origin', this.#allowOrigin(origin)];
      if (this.#spec.credentials) out.push('access-control-allow-credentials', 'true');
      if (this.#spec.exposeHeaders.length > 0) out.push('access-control-expose-headers', this.#spec.exposeHeaders.join(', '));
      out.push('vary', 'origin');
    }
    if (this.#actual.size >= 1024) this.#actual.clear();
    this.#actual.set(origin, out);
    return out;
  }
}

const SIMPLE_METHODS = new Set(['GET', 'HEAD', 'POST']);

/** "https://*.example.com" → one or more labels in place of "*", the rest literal, anchored. */
export function originPattern(pattern: string): RegExp {
  const parts = pattern.toLowerCase().split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'));
  return new RegExp('^' + parts.join('[a-z0-9-]+(?:\\.[a-z0-9-]+)*') + '$');
}
