// The registration API's store: PUT /api/registry/:pool {url, weight, ttl_s} registers a backend
// for ttl_s seconds (repeat it to heartbeat), DELETE removes it, GET lists them. A pool with an
// etcd source keeps its registrations in etcd, under that source's prefix, each key held by a lease
// of ttl_s, so every Sluice host watching the prefix serves it and a backend that stops
// heart-beating disappears everywhere; any other pool keeps them in memory on this host, each
// registration a DiscoverySource member that expires by itself.

import type { Logger } from 'pino';
import type { EtcdDiscovery } from '../model/discovery.js';
import type { PoolConfig } from '../model/pool.js';
import type { EtcdClients } from './etcd-source.js';
import { MAX_WEIGHT, parseEntry, type Discovered } from './source.js';

export const DEFAULT_TTL_S = 30;
export const MAX_TTL_S = 3600;
const ID = /^[A-Za-z0-9._:[\]-]{1,128}$/;
const BODY_KEYS = new Set(['url', 'weight', 'ttl_s', 'id', 'zone']);

export interface Registration {
  readonly id: string;
  readonly url: string;
  readonly weight: number;
  readonly ttl_s: number;
  readonly zone?: string;
  /** Unix ms when it lapses without a heartbeat (memory only; etcd's lease says for etcd). */
  readonly expires_at?: number;
}

export type RegistryAnswer<T> = { ok: true; value: T } | { ok: false; status: number; error: string };

interface Held {
  readonly registration: Registration;
  readonly member: Discovered;
  readonly timer: NodeJS.Timeout;
}

export class Registry {
  readonly #clients: EtcdClients;
  readonly #log: Logger;
  readonly #changed: (pool: string) => void;
  /** Pools that accept registrations, and the etcd source they write to (null: memory). */
  #pools = new Map<string, EtcdDiscovery | null>();
  readonly #memory = new Map<string, Map<string, Held>>();

  constructor(clients: EtcdClients, log: Logger, changed: (pool: string) => void) {
    this.#clients = clients;
    this.#log = log;
    this.#changed = changed;
  }

  /** Follow the configuration: registrations of pools that no longer take them are dropped. */
  configure(pools: readonly PoolConfig[]): void {
    const next = new Map<string, EtcdDiscovery | null>();
    for (const p of pools) {
      if (p.discovery?.registry !== true) continue;
      const etcd = p.discovery.sources.find((s): s is EtcdDiscovery => s.kind === 'etcd');
      next.set(p.name, etcd ?? null);
    }
    this.#pools = next;
    for (const [pool, held] of this.#memory) {
      if (next.get(pool) === null) continue;
      for (const h of held.values()) clearTimeout(h.timer);
      this.#memory.delete(pool);
      this.#changed(pool);
    }
  }

  /** Where `pool`'s registrations live; an error answer when it takes none. */
  store(pool: string): RegistryAnswer<'etcd' | 'memory'> {
    const target = this.#pools.get(pool);
    if (target === undefined) return { ok: false, status: 404, error: `pool ${JSON.stringify(pool)} does not take registrations (give it registry: true or a discovery source)` };
    return { ok: true, value: target === null ? 'memory' : 'etcd' };
  }

  /** This host's in-memory registrations of `pool`, as discovered backends. */
  members(pool: string): Discovered[] {
    return [...(this.#memory.get(pool)?.values() ?? [])].map((h) => h.member);
  }

  async register(pool: string, body: unknown): Promise<RegistryAnswer<Registration>> {
    const where = this.store(pool);
    if (!where.ok) return where;
    const checked = validate(body);
    if (!checked.ok) return checked;
    const { registration, member } = checked.value;
    const etcd = this.#pools.get(pool);
    if (etcd) {
      try {
        const client = this.#clients.get(etcd.endpoints);
        const lease = client.lease(registration.ttl_s, { autoKeepAlive: false });
        await lease.grant();
        const value = { url: registration.url, weight: registration.weight, ttl_s: registration.ttl_s, registered: true, ...(registration.zone ? { zone: registration.zone } : {}) };
        // A heartbeat writes the key under a new lease (any host may take it, and ttl_s may change),
        // then revokes the lease of the registration it replaces, which holds nothing any more. A
        // key some other tool wrote under that id keeps its lease: it may hold other keys.
        const previous = await lease.put(etcd.prefix + registration.id).value(JSON.stringify(value)).getPrevious();
        const old = previous?.lease;
        if (old !== undefined && old !== '0' && old !== (await lease.grant()) && registeredValue(previous.value)) {
          await client.leaseClient.leaseRevoke({ ID: old }).catch(() => undefined);
        }
      } catch (err) {
        this.#log.warn({ pool, id: registration.id, err: (err as Error).message }, 'registry: etcd write failed');
        return { ok: false, status: 503, error: `etcd is unavailable: ${(err as Error).message}` };
      }
      return { ok: true, value: registration };
    }
    let held = this.#memory.get(pool);
    if (held === undefined) this.#memory.set(pool, (held = new Map()));
    const before = held.get(registration.id);
    if (before) clearTimeout(before.timer);
    const expires = Date.now() + registration.ttl_s * 1000;
    const timer = setTimeout(() => {
      if (held.get(registration.id)?.timer !== timer) return;
      held.delete(registration.id);
      this.#log.info({ pool, id: registration.id, url: registration.url }, 'registry: registration expired (no heartbeat)');
      this.#changed(pool);
    }, registration.ttl_s * 1000);
    timer.unref();
    held.set(registration.id, { registration: { ...registration, expires_at: expires }, member, timer });
    const same = before !== undefined && before.registration.url === registration.url && before.registration.weight === registration.weight;
    if (!same) this.#changed(pool);
    return { ok: true, value: { ...registration, expires_at: expires } };
  }

  async deregister(pool: string, id: string): Promise<RegistryAnswer<{ id: string }>> {
    const where = this.store(pool);
    if (!where.ok) return where;
    if (!ID.test(id)) return { ok: false, status: 400, error: 'id: letters, digits and . _ : [ ] -, at most 128' };
    const etcd = this.#pools.get(pool);
    if (etcd) {
      try {
        const res = await this.#clients.get(etcd.endpoints).delete().key(etcd.prefix + id).exec();
        if (Number(res.deleted) === 0) return { ok: false, status: 404, error: `no registration ${JSON.stringify(id)} in pool ${JSON.stringify(pool)}` };
      } catch (err) {
        return { ok: false, status: 503, error: `etcd is unavailable: ${(err as Error).message}` };
      }
      return { ok: true, value: { id } };
    }
    const held = this.#memory.get(pool)?.get(id);
    if (held === undefined) return { ok: false, status: 404, error: `no registration ${JSON.stringify(id)} in pool ${JSON.stringify(pool)}` };
    clearTimeout(held.timer);
    this.#memory.get(pool)?.delete(id);
    this.#changed(pool);
    return { ok: true, value: { id } };
  }

  async list(pool: string): Promise<RegistryAnswer<{ store: 'etcd' | 'memory'; registrations: Registration[] }>> {
    const where = this.store(pool);
    if (!where.ok) return where;
    const etcd = this.#pools.get(pool);
    if (!etcd) {
      const registrations = [...(this.#memory.get(pool)?.values() ?? [])].map((h) => h.registration);
      return { ok: true, value: { store: 'memory', registrations } };
    }
    try {
      const res = await this.#clients.get(etcd.endpoints).getAll().prefix(etcd.prefix).exec();
      const registrations: Registration[] = [];
      for (const kv of res.kvs) {
        try {
          const v = JSON.parse(kv.value.toString()) as Record<string, unknown>;
          if (v.registered !== true) continue;
          registrations.push({ id: kv.key.toString().slice(etcd.prefix.length), url: String(v.url), weight: Number(v.weight), ttl_s: Number(v.ttl_s), ...(typeof v.zone === 'string' ? { zone: v.zone } : {}) });
        } catch {
          // not one of ours
        }
      }
      return { ok: true, value: { store: 'etcd', registrations } };
    } catch (err) {
      return { ok: false, status: 503, error: `etcd is unavailable: ${(err as Error).message}` };
    }
  }

  stop(): void {
    for (const held of this.#memory.values()) for (const h of held.values()) clearTimeout(h.timer);
    this.#memory.clear();
  }
}

function registeredValue(value: Buffer | undefined): boolean {
  try {
    return (JSON.parse(value?.toString() ?? '') as { registered?: unknown }).registered === true;
  } catch {
    return false;
  }
}

/** A PUT body: {url, weight?, ttl_s?, id?, zone?}; every problem named. */
export function validate(body: unknown): RegistryAnswer<{ registration: Registration; member: Discovered }> {
  const bad = (error: string): RegistryAnswer<never> => ({ ok: false, status: 400, error });
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return bad('expected a JSON object {"url": ..., "weight": ..., "ttl_s": ...}');
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => !BODY_KEYS.has(k));
  if (unknown.length > 0) return bad(`unknown key ${JSON.stringify(unknown[0])}; known keys: url, weight, ttl_s, id, zone`);
  if (b.weight !== undefined && (typeof b.weight !== 'number' || !Number.isFinite(b.weight) || b.weight <= 0 || b.weight > MAX_WEIGHT)) {
    return bad(`weight: expected a number above 0 and at most ${MAX_WEIGHT}, got ${JSON.stringify(b.weight)}`);
  }
  const parsed = parseEntry({ url: b.url, weight: b.weight, zone: b.zone }, 'registry');
  if (!parsed.ok) return bad(parsed.error.replace(/^"(\w+)"/, '$1:'));
  let ttl = DEFAULT_TTL_S;
  if (b.ttl_s !== undefined) {
    if (typeof b.ttl_s !== 'number' || !Number.isInteger(b.ttl_s) || b.ttl_s < 1 || b.ttl_s > MAX_TTL_S) return bad(`ttl_s: expected whole seconds from 1 to ${MAX_TTL_S}, got ${JSON.stringify(b.ttl_s)}`);
    ttl = b.ttl_s;
  }
  const u = parsed.member.upstream;
  const id = b.id === undefined ? `${u.host.includes(':') ? `[${u.host}]` : u.host}:${u.port}` : b.id;
  if (typeof id !== 'string' || !ID.test(id)) return bad('id: letters, digits and . _ : [ ] -, at most 128');
  const registration: Registration = { id, url: u.url, weight: u.weight, ttl_s: ttl, ...(parsed.member.zone ? { zone: parsed.member.zone } : {}) };
  return { ok: true, value: { registration, member: parsed.member } };
}
