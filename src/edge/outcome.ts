// What one edge check decides: let the request through (with request header lines to add
// upstream), or answer it here (status, headers, body). Denials are plain values; the answers
// Sluice gives most often are built once.

export interface Pass {
  readonly ok: true;
  /** "name: value\r\n" lines added to the upstream request ('' for none). */
  readonly lines: string;
  /** Claims of a verified token (for jwt:CLAIM rate-limit keys), or null. */
  readonly claims: Readonly<Record<string, unknown>> | null;
}

export interface Denial {
  readonly ok: false;
  readonly status: number;
  /** name, value, name, value... */
  readonly headers: readonly string[];
  readonly body: string;
}

export type Outcome = Pass | Denial;

export const PASS: Pass = Object.freeze({ ok: true, lines: '', claims: null });

export function deny(status: number, body: string, ...headers: string[]): Denial {
  return { ok: false, status, headers, body };
}

/** A header value Sluice may send: no control characters (a claim could hold anything). */
const SAFE_VALUE = /^[^\x00-\x08\x0a-\x1f\x7f]*$/;

/** The request header line for a claim value: strings as they are, lists comma-joined, numbers and booleans as text. */
export function claimLine(header: string, value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number' || typeof value === 'boolean') text = String(value);
  else if (Array.isArray(value)) text = value.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(',');
  else if (value === undefined || value === null) return '';
  else text = JSON.stringify(value);
  return SAFE_VALUE.test(text) ? header + ': ' + text + '\r\n' : '';
}

/** A bounded map with oldest-first eviction (Map keeps insertion order). */
export class BoundedCache<V> {
  readonly #max: number;
  readonly #map = new Map<string, V>();
  constructor(max: number) {
    this.#max = max;
  }
  get(key: string): V | undefined {
    return this.#map.get(key);
  }
  set(key: string, value: V): void {
    if (this.#map.size >= this.#max && !this.#map.has(key)) {
      const first = this.#map.keys().next();
      if (!first.done) this.#map.delete(first.value);
    }
    this.#map.set(key, value);
  }
  delete(key: string): void {
    this.#map.delete(key);
  }
  get size(): number {
    return this.#map.size;
  }
}
