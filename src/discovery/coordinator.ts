// Discovery coordinator: runs each pool's sources (dns, etcd, file) and the registration API's
// in-memory store, and turns what they report into pool membership. A change is debounced
// (a render or a deploy comes as a burst) and then applied through the reloader, the same path a
// SIGHUP takes: new backends join out of rotation until their first health check (then slow
// start), removed ones stop getting new requests and finish what they have in flight, and their
// slots are reused only once drained (Membership.reclaim). The coordinator never touches the
// shared table or the workers itself.
//
// A pool's backends are its static upstreams, then every source's latest list, then this host's
// in-memory registrations, one backend per URL (the first source to name a URL gives its weight
// and its source label). Priorities (SRV) pick groups: the lowest priority group is served, and
// the next one joins while every member of those before it is unhealthy.

import type { Logger } from 'pino';
import type { ResolvedConfig } from '../config/types.js';
import type { DiscoverySpec } from '../model/discovery.js';
import type { PoolConfig } from '../model/pool.js';
import type { Upstream } from '../model/upstream.js';
import { DnsSource } from './dns-source.js';
import { EtcdClients, EtcdSource } from './etcd-source.js';
import { FileSource } from './file-source.js';
import { Registry } from './registry.js';
import type { Discovered, DiscoverySource } from './source.js';

/** Sources report in bursts (a file render, a deploy's many keys): apply once they settle. */
const DEBOUNCE_MS = 50;
/** Longest a shutdown waits for sources to stop (an etcd watch cancel needs etcd). */
const STOP_WAIT_MS = 1000;
/** How often priority groups look at health (only pools with more than one group do). */
const PRIORITY_CHECK_MS = 500;

export interface CoordinatorOptions {
  readonly log: Logger;
  /** DNS resolvers for every dns source ('' entries not allowed); empty: the system's. */
  readonly dnsServers: readonly string[];
  /** Health state of a backend of a pool ('unhealthy' is what priority groups look at). */
  readonly health: () => ReadonlyMap<string, string>;
}

interface Running {
  readonly spec: DiscoverySpec;
  readonly key: string;
  readonly source: DiscoverySource;
  /** The latest list; undefined until the first report. */
  members: readonly Discovered[] | undefined;
  reported: boolean;
}

export class DiscoveryCoordinator {
  readonly #options: CoordinatorOptions;
  readonly #log: Logger;
  readonly clients = new EtcdClients();
  readonly registry: Registry;
  /** Pool name → its running sources. */
  readonly #running = new Map<string, Running[]>();
  #apply: () => void = () => undefined;
  #debounce: NodeJS.Timeout | null = null;
  #priorityTimer: NodeJS.Timeout | null = null;
  /** What the last compose produced per pool (URLs), to tell whether health moved a group. */
  #composed = new Map<string, string>();
  #base: readonly PoolConfig[] = [];
  #firstReport: (() => void) | null = null;
  #stopped = false;

  constructor(options: CoordinatorOptions) {
    this.#options = options;
    this.#log = options.log.child({ component: 'discovery' });
    this.registry = new Registry(this.clients, this.#log, () => this.#changed());
  }

  /** What to call when membership should be recomposed and applied (the reloader's). */
  onChange(apply: () => void): void {
    this.#apply = apply;
  }

  /** Whether any pool of `config` discovers its backends. */
  static wanted(config: ResolvedConfig): boolean {
    return config.pools.some((p) => p.discovery !== undefined);
  }

  /** Follow a (re)loaded configuration: start sources pools gained, stop those they lost. */
  configure(config: ResolvedConfig): void {
    this.#base = config.pools;
    this.registry.configure(config.pools);
    const pools = new Set(config.pools.map((p) => p.name));
    for (const [pool, running] of this.#running) {
      if (!pools.has(pool)) {
        for (const r of running) void r.source.stop();
        this.#running.delete(pool);
      }
    }
    for (const p of config.pools) {
      const specs = p.discovery?.sources ?? [];
      const before = this.#running.get(p.name) ?? [];
      const keys = new Set(specs.map((s) => JSON.stringify(s)));
      for (const r of before) if (!keys.has(r.key)) void r.source.stop();
      const next: Running[] = [];
      for (const spec of specs) {
        const key = JSON.stringify(spec);
        const kept = before.find((r) => r.key === key);
        if (kept) {
          next.push(kept);
          continue;
        }
        const source = this.#create(spec, p.name);
        const r: Running = { spec, key, source, members: undefined, reported: false };
        next.push(r);
        source.start((members) => {
          if (this.#stopped || this.#running.get(p.name)?.includes(r) !== true) return;
          r.reported = true;
          if (members !== null) r.members = members;
          if (this.#allReported()) this.#firstReport?.();
          if (members !== null) this.#changed();
        });
      }
      if (next.length > 0) this.#running.set(p.name, next);
      else this.#running.delete(p.name);
    }
    this.#watchPriorities();
  }

  /** Resolves once every source has reported once (or `timeoutMs` passed): membership at start. */
  async initial(timeoutMs: number): Promise<boolean> {
    if (this.#allReported()) return true;
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      new Promise<boolean>((resolve) => (this.#firstReport = () => resolve(true))),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    this.#firstReport = null;
    if (!done) {
      const waiting = [...this.#running].flatMap(([pool, rs]) => rs.filter((r) => !r.reported).map((r) => `${pool} ${r.spec.kind}`));
      this.#log.warn({ waiting, timeoutMs }, 'discovery: some sources have not answered yet; starting with what is known');
    }
    return done;
  }

  /** `config` with each discovering pool's upstreams: static, then discovered, then registered. */
  compose(config: ResolvedConfig): ResolvedConfig {
    const health = this.#options.health();
    const composed = new Map<string, string>();
    const pools = config.pools.map((p) => {
      if (p.discovery === undefined) return p;
      const upstreams = this.#members(p, health);
      composed.set(p.name, upstreams.map((u) => u.url).join(' '));
      return { ...p, upstreams };
    });
    this.#composed = composed;
    return { ...config, pools };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#debounce !== null) clearTimeout(this.#debounce);
    if (this.#priorityTimer !== null) clearInterval(this.#priorityTimer);
    this.registry.stop();
    // A watch cancel waits for etcd; an unreachable etcd must not hold up a shutdown.
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_WAIT_MS)));
    await Promise.race([Promise.all([...this.#running.values()].flat().map((r) => r.source.stop())), bound]);
    clearTimeout(timer);
    this.#running.clear();
    this.clients.closeAll();
  }

  #members(pool: PoolConfig, health: ReadonlyMap<string, string>): Upstream[] {
    const all: Discovered[] = pool.upstreams.filter((u) => u.source === undefined || u.source === 'static').map((u) => ({ upstream: u, priority: 0 }));
    for (const r of this.#running.get(pool.name) ?? []) all.push(...(r.members ?? []));
    all.push(...this.registry.members(pool.name));
    return servedMembers(pool.name, all, health);
  }

  #allReported(): boolean {
    return [...this.#running.values()].every((rs) => rs.every((r) => r.reported));
  }

  #changed(): void {
    if (this.#stopped || this.#debounce !== null) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = null;
      this.#apply();
    }, DEBOUNCE_MS);
  }

  /** Pools with several priority groups are recomposed when health moves the serving group. */
  #watchPriorities(): void {
    if (this.#priorityTimer !== null) return;
    this.#priorityTimer = setInterval(() => {
      const grouped = this.#base.filter((p) => {
        const priorities = new Set((this.#running.get(p.name) ?? []).flatMap((r) => (r.members ?? []).map((m) => m.priority)));
        return priorities.size > 1;
      });
      if (grouped.length === 0) return;
      const health = this.#options.health();
      for (const p of grouped) {
        const urls = this.#members(p, health).map((u) => u.url).join(' ');
        if (urls !== this.#composed.get(p.name)) return this.#changed();
      }
    }, PRIORITY_CHECK_MS);
    this.#priorityTimer.unref();
  }

  #create(spec: DiscoverySpec, pool: string): DiscoverySource {
    const ctx = { pool, log: this.#log };
    switch (spec.kind) {
      case 'dns':
        return new DnsSource(spec, ctx, { servers: this.#options.dnsServers });
      case 'etcd':
        return new EtcdSource(spec, ctx, this.clients.get(spec.endpoints));
      case 'file':
        return new FileSource(spec, ctx);
    }
  }
}

/**
 * What a pool serves of everything found for it (in precedence order): one backend per URL, the
 * first to name it; then priority groups, lowest first, each one joining only while every member
 * of the groups before it is known to be down (`health`: state by "pool\0url").
 */
export function servedMembers(pool: string, found: readonly Discovered[], health: ReadonlyMap<string, string>): Upstream[] {
  const byUrl = new Map<string, Discovered>();
  for (const d of found) if (!byUrl.has(d.upstream.url)) byUrl.set(d.upstream.url, d);
  const unique = [...byUrl.values()];
  const priorities = [...new Set(unique.map((d) => d.priority))].sort((a, b) => a - b);
  const served: Upstream[] = [];
  for (const priority of priorities) {
    const group = unique.filter((d) => d.priority === priority);
    served.push(...group.map((d) => d.upstream));
    // A group with a member not known to be down is enough; otherwise the next one joins too.
    if (group.some((d) => health.get(`${pool}\0${d.upstream.url}`) !== 'unhealthy')) break;
  }
  return served;
}
