// dns: A, AAAA or SRV records re-resolved as their TTL says, clamped to the pool's
// [min_ttl_s, max_ttl_s] (Consul DNS answers TTL 0, which must not become a resolve loop; a TTL of
// a day must not hide a change for a day). Works with Kubernetes headless services (A/AAAA, one
// record per ready pod) and Consul (A or SRV) as they answer.
//
// SRV (RFC 2782): each record's target is resolved to its addresses (A, else AAAA) and becomes a
// backend on the record's port with the record's weight as its backend weight (weight 0, "almost
// never" in the RFC, becomes the smallest weight Sluice has); the priority is passed on, and the
// coordinator serves the lowest priority group with a healthy member. node:dns does not report an
// SRV record's own TTL, so an SRV answer is re-resolved on the lowest TTL of its targets' records.
//
// An answer that says "no such name" or "no records" (NXDOMAIN, NODATA) empties the pool: that is
// how a headless service with no ready pod answers. Any other failure (timeout, SERVFAIL, refused)
// keeps the last known backends and retries sooner, backing off up to max_ttl_s.

import { Resolver } from 'node:dns/promises';
import type { DnsDiscovery } from '../model/discovery.js';
import type { Upstream } from '../model/upstream.js';
import type { Discovered, DiscoverySource, SourceContext } from './source.js';

/** Per query; a resolver that does not answer in this long counts as down for this round. */
const QUERY_TIMEOUT_MS = 2000;
/** SRV weight 0: a share this small next to weights of 1 and more (the table keeps 2 decimals). */
const ZERO_WEIGHT = 0.01;
const MAX_WEIGHT = 1000;

/** Resolver errors that are answers: the name or the record type does not exist. */
const EMPTY_ANSWERS = new Set(['ENOTFOUND', 'ENODATA']);

export interface DnsOptions {
  /** Resolver addresses ("127.0.0.1:5353", "[::1]:53"); empty: the system's (/etc/resolv.conf). */
  readonly servers: readonly string[];
}

export class DnsSource implements DiscoverySource {
  readonly kind = 'dns' as const;
  readonly #spec: DnsDiscovery;
  readonly #ctx: SourceContext;
  readonly #resolver: Resolver;
  #timer: NodeJS.Timeout | null = null;
  #failures = 0;
  #stopped = false;

  constructor(spec: DnsDiscovery, ctx: SourceContext, options: DnsOptions) {
    this.#spec = spec;
    this.#ctx = ctx;
    this.#resolver = new Resolver({ timeout: QUERY_TIMEOUT_MS, tries: 1 });
    if (options.servers.length > 0) this.#resolver.setServers([...options.servers]);
  }

  start(update: (members: readonly Discovered[] | null) => void): void {
    const round = async (): Promise<void> => {
      this.#timer = null;
      let next: number;
      try {
        const { members, ttlMs } = await this.resolve();
        if (this.#stopped) return;
        this.#failures = 0;
        update(members);
        next = this.#clamp(ttlMs);
      } catch (err) {
        if (this.#stopped) return;
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        if (EMPTY_ANSWERS.has(code)) {
          this.#failures = 0;
          update([]);
          // A negative answer has a TTL too (the SOA's), which node:dns does not report: use the floor.
          next = this.#spec.minTtlMs;
        } else {
          this.#failures++;
          this.#ctx.log.warn({ pool: this.#ctx.pool, name: this.#spec.name, type: this.#spec.type, err: code }, 'dns discovery failed; keeping the last known backends');
          update(null);
          next = Math.min(this.#spec.maxTtlMs, this.#spec.minTtlMs * 2 ** Math.min(this.#failures, 10));
        }
      }
      if (!this.#stopped) {
        this.#timer = setTimeout(() => void round(), next);
        this.#timer.unref();
      }
    };
    void round();
  }

  /** One resolution: the backends and the lowest TTL among the records that made them (ms). */
  async resolve(): Promise<{ members: Discovered[]; ttlMs: number }> {
    const { name, type, port, scheme } = this.#spec;
    if (type === 'SRV') return this.#resolveSrv();
    const records = type === 'A' ? await this.#resolver.resolve4(name, { ttl: true }) : await this.#resolver.resolve6(name, { ttl: true });
    const members = records.map((r) => member(scheme, r.address, port, 1, 0));
    return { members: dedupe(members), ttlMs: lowestTtl(records) };
  }

  async #resolveSrv(): Promise<{ members: Discovered[]; ttlMs: number }> {
    const { name, scheme } = this.#spec;
    const records = await this.#resolver.resolveSrv(name);
    const members: Discovered[] = [];
    let ttlMs = Infinity;
    for (const srv of records) {
      const { addresses, ttl } = await this.#addresses(srv.name);
      ttlMs = Math.min(ttlMs, ttl);
      const weight = srv.weight === 0 ? ZERO_WEIGHT : Math.min(srv.weight, MAX_WEIGHT);
      for (const address of addresses) members.push(member(scheme, address, srv.port, weight, srv.priority));
    }
    return { members: dedupe(members), ttlMs };
  }

  /** A target's addresses (A, else AAAA; an IP literal as itself) and their lowest TTL. */
  async #addresses(target: string): Promise<{ addresses: string[]; ttl: number }> {
    try {
      const v4 = await this.#resolver.resolve4(target, { ttl: true });
      if (v4.length > 0) return { addresses: v4.map((r) => r.address), ttl: lowestTtl(v4) };
    } catch (err) {
      if (!EMPTY_ANSWERS.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
    }
    try {
      const v6 = await this.#resolver.resolve6(target, { ttl: true });
      return { addresses: v6.map((r) => r.address), ttl: lowestTtl(v6) };
    } catch (err) {
      // A target without addresses is skipped; the others still serve.
      if (EMPTY_ANSWERS.has((err as NodeJS.ErrnoException).code ?? '')) return { addresses: [], ttl: Infinity };
      throw err;
    }
  }

  #clamp(ttlMs: number): number {
    const { minTtlMs, maxTtlMs } = this.#spec;
    return Math.min(maxTtlMs, Math.max(minTtlMs, Number.isFinite(ttlMs) ? ttlMs : maxTtlMs));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#resolver.cancel();
  }
}

function lowestTtl(records: readonly { ttl: number }[]): number {
  return records.reduce((low, r) => Math.min(low, r.ttl * 1000), Infinity);
}

function member(scheme: 'http:' | 'https:', address: string, port: number, weight: number, priority: number): Discovered {
  const v6 = address.includes(':');
  const hostname = v6 ? `[${address}]` : address;
  const upstream: Upstream = { url: `${scheme}//${hostname}:${port}`, protocol: scheme, host: address, port, weight, source: 'dns' };
  return { upstream, priority };
}

/** One backend per address and port: the lowest priority, the largest weight among duplicates. */
function dedupe(members: readonly Discovered[]): Discovered[] {
  const byUrl = new Map<string, Discovered>();
  for (const m of members) {
    const seen = byUrl.get(m.upstream.url);
    if (seen === undefined || m.priority < seen.priority || (m.priority === seen.priority && m.upstream.weight > seen.upstream.weight)) byUrl.set(m.upstream.url, m);
  }
  return [...byUrl.values()].sort((a, b) => (a.upstream.url < b.upstream.url ? -1 : 1));
}
