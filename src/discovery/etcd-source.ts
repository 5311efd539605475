// etcd: every key under the pool's prefix is a backend, its value {"url", "weight", "zone"}
// (registrations also carry "registered": true). Keys are usually held by leases, so a backend
// that stops heart-beating disappears when its lease expires. The source lists the prefix, then
// watches it from the listed revision on. When etcd goes away the last known backends stay (the
// etcd3 client reconnects by itself); once the watch is connected again the prefix is listed anew,
// so what changed during the outage (leases that expired, keys written to another member) is
// caught up on even if the watch's history was compacted meanwhile.

import { Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import type { EtcdDiscovery } from '../model/discovery.js';
import { parseEntry, type Discovered, type DiscoverySource, type SourceContext } from './source.js';

/** Retry of the first list while etcd is unreachable: from this, doubling, up to RETRY_MAX_MS. */
const RETRY_MS = 250;
const RETRY_MAX_MS = 5000;

/** etcd clients by endpoint list: pools (and the registry) on one etcd share its connection. */
export class EtcdClients {
  readonly #clients = new Map<string, Etcd3>();

  get(endpoints: readonly string[]): Etcd3 {
    const key = endpoints.join(',');
    let client = this.#clients.get(key);
    if (client === undefined) {
      client = new Etcd3({ hosts: [...endpoints], dialTimeout: 2000 });
      this.#clients.set(key, client);
    }
    return client;
  }

  closeAll(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }
}

export class EtcdSource implements DiscoverySource {
  readonly kind = 'etcd' as const;
  readonly #spec: EtcdDiscovery;
  readonly #ctx: SourceContext;
  readonly #client: Etcd3;
  readonly #members = new Map<string, Discovered>();
  #watcher: Watcher | null = null;
  #timer: NodeJS.Timeout | null = null;
  /** Revision of the last full list: watch events at or before it are already in it. */
  #listed = 0n;
  #lost = false;
  #stopped = false;
  #update: (members: readonly Discovered[] | null) => void = () => undefined;

  constructor(spec: EtcdDiscovery, ctx: SourceContext, client: Etcd3) {
    this.#spec = spec;
    this.#ctx = ctx;
    this.#client = client;
  }

  start(update: (members: readonly Discovered[] | null) => void): void {
    this.#update = update;
    void this.#begin(RETRY_MS);
  }

  /** List, then watch from the list's revision; retried with back-off while etcd is unreachable. */
  async #begin(retryMs: number): Promise<void> {
    this.#timer = null;
    if (this.#stopped) return;
    try {
      const revision = await this.#list();
      if (this.#stopped) return;
      const watcher = await this.#client.watch().prefix(this.#spec.prefix).startRevision(String(revision + 1n)).create();
      if (this.#stopped) {
        void watcher.cancel();
        return;
      }
      this.#watch(watcher);
    } catch (err) {
      if (this.#stopped) return;
      this.#ctx.log.warn({ pool: this.#ctx.pool, prefix: this.#spec.prefix, err: (err as Error).message }, 'etcd discovery: cannot list; keeping the last known backends');
      this.#update(null);
      this.#timer = setTimeout(() => void this.#begin(Math.min(retryMs * 2, RETRY_MAX_MS)), retryMs);
      this.#timer.unref();
    }
  }

  /** The whole prefix, replacing what is known; returns its revision. */
  async #list(): Promise<bigint> {
    const res = await this.#client.getAll().prefix(this.#spec.prefix).exec();
    this.#members.clear();
    for (const kv of res.kvs) this.#put(kv);
    this.#listed = BigInt(res.header.revision);
    this.#update([...this.#members.values()]);
    return this.#listed;
  }

  #watch(watcher: Watcher): void {
    this.#watcher = watcher;
    const fresh = (kv: IKeyValue): boolean => BigInt(kv.mod_revision) > this.#listed;
    watcher.on('put', (kv) => {
      if (!fresh(kv)) return;
      this.#put(kv);
      this.#update([...this.#members.values()]);
    });
    watcher.on('delete', (kv) => {
      if (!fresh(kv)) return;
      this.#members.delete(kv.key.toString());
      this.#update([...this.#members.values()]);
    });
    watcher.on('disconnected', () => {
      if (this.#lost || this.#stopped) return;
      this.#lost = true;
      this.#ctx.log.warn({ pool: this.#ctx.pool, prefix: this.#spec.prefix }, 'etcd discovery: watch lost; keeping the last known backends until it is back');
      this.#update(null);
    });
    watcher.on('connected', () => {
      if (!this.#lost || this.#stopped) return;
      this.#lost = false;
      // Catch up on the outage with a fresh list (leases that expired meanwhile, compacted history).
      this.#list().then(
        () => this.#ctx.log.info({ pool: this.#ctx.pool, prefix: this.#spec.prefix, backends: this.#members.size }, 'etcd discovery: watch back; prefix listed again'),
        (err: Error) => this.#ctx.log.warn({ pool: this.#ctx.pool, err: err.message }, 'etcd discovery: list after reconnect failed; the watch carries on'),
      );
    });
    watcher.on('error', (err) => {
      if (this.#stopped) return;
      // Compacted past our revision, or the watch was cancelled by etcd: start over from a list.
      this.#ctx.log.warn({ pool: this.#ctx.pool, err: err.message }, 'etcd discovery: watch failed; listing again');
      this.#watcher = null;
      void watcher.cancel().catch(() => undefined);
      void this.#begin(RETRY_MS);
    });
  }

  #put(kv: IKeyValue): void {
    const key = kv.key.toString();
    let value: unknown;
    try {
      value = JSON.parse(kv.value.toString());
    } catch {
      this.#ctx.log.warn({ pool: this.#ctx.pool, key }, 'etcd discovery: value is not JSON; key ignored');
      this.#members.delete(key);
      return;
    }
    const registered = typeof value === 'object' && value !== null && (value as { registered?: unknown }).registered === true;
    const parsed = parseEntry(value, registered ? 'registry' : 'etcd');
    if (!parsed.ok) {
      this.#ctx.log.warn({ pool: this.#ctx.pool, key, err: parsed.error }, 'etcd discovery: invalid backend; key ignored');
      this.#members.delete(key);
      return;
    }
    this.#members.set(key, parsed.member);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    await this.#watcher?.cancel().catch(() => undefined);
  }
}
