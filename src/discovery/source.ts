// The one interface every discovery source implements (dns, etcd, file; the registration API's
// in-memory store too), and the parsing of a discovered backend shared by the sources that read
// JSON ({"url", "weight", "zone"}: etcd values, file entries, registry bodies).

import type { Logger } from 'pino';
import type { BackendSource } from '../model/discovery.js';
import type { Upstream } from '../model/upstream.js';
import { upstream } from '../config/value-parsers.js';

/** One backend as a source found it. */
export interface Discovered {
  readonly upstream: Upstream;
  /** SRV priority (lower is preferred); 0 for every other source. */
  readonly priority: number;
  readonly zone?: string;
}

/**
 * A source reports its whole current list each time it changes (`update`), or null when it cannot
 * tell (resolver down, etcd unreachable, file unreadable): then the last list it reported stands.
 * `stop` ends every timer, watch and connection it holds.
 */
export interface DiscoverySource {
  readonly kind: BackendSource;
  start(update: (members: readonly Discovered[] | null) => void): void;
  stop(): Promise<void>;
}

export interface SourceContext {
  readonly pool: string;
  readonly log: Logger;
}

/** Weights as SLUICE_UPSTREAMS takes them. */
export const MAX_WEIGHT = 1000;

/** A JSON backend entry ({"url": ..., "weight"?: n, "zone"?: s}) as an upstream; an error text if it is not one. */
export function parseEntry(value: unknown, source: BackendSource): { ok: true; member: Discovered } | { ok: false; error: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, error: 'expected an object with "url"' };
  const v = value as Record<string, unknown>;
  if (typeof v.url !== 'string') return { ok: false, error: '"url" must be a string such as "http://10.0.0.5:8080"' };
  const parsed = upstream(v.url.trim());
  if (!parsed.ok) return { ok: false, error: `"url" ${JSON.stringify(v.url)}: expected ${parsed.issues.map((i) => i.expected).join('; ')}` };
  let weight = parsed.value.weight;
  if (v.weight !== undefined) {
    if (typeof v.weight !== 'number' || !Number.isFinite(v.weight) || v.weight <= 0 || v.weight > MAX_WEIGHT) {
      return { ok: false, error: `"weight" must be a number above 0 and at most ${MAX_WEIGHT}` };
    }
    weight = v.weight;
  }
  if (v.zone !== undefined && typeof v.zone !== 'string') return { ok: false, error: '"zone" must be a string' };
  const member: Discovered = { upstream: { ...parsed.value, weight, source }, priority: 0, ...(typeof v.zone === 'string' ? { zone: v.zone } : {}) };
  return { ok: true, member };
}
