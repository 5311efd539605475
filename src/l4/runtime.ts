// The L4 listeners one L4 thread runs (workers/l4-worker.ts), built from the resolved config and
// the membership: one L4Pool per pool (policy over the shared table, PROXY version), one outlier
// detector per pool, and a TcpProxy or UdpProxy per listener assigned to this thread. A reload or a
// membership change builds new pools and swaps them in (setRoutes / setPool: new connections only);
// a listener added by a reload starts, one removed drains.

import type { Logger } from 'pino';
import { policyOptions } from '../balancer/policy.js';
import { createPolicy } from '../balancer/registry.js';
import { OutlierDetector, outlierOptions, type OutlierFailure } from '../health/outlier.js';
import type { L4ListenerSpec } from '../model/listener.js';
import type { PoolConfig } from '../model/pool.js';
import type { Backend } from '../model/upstream.js';
import { P, poolCell } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';
import type { ConnLedger } from './ledger.js';
import { L4Pool, SniTable, type L4Backend } from './pool.js';
import { TcpProxy } from './tcp-proxy.js';
import { UdpProxy } from './udp-proxy.js';
import type { L4ListenerSnapshot } from './snapshot.js';

/** What the runtime needs of a configuration (a ResolvedConfig has it). */
export interface L4Config {
  readonly pools: readonly PoolConfig[];
  readonly listeners: readonly L4ListenerSpec[];
  readonly drainTimeoutMs: number;
}

/**
 * Outlier detection per pool behind one object a listener keeps for its life: the slot says which
 * pool's detector (and thresholds) an outcome belongs to, and reloads replace the map.
 */
class OutlierRouter {
  bySlot = new Map<number, OutlierDetector>();
  onSuccess(slot: number): void {
    this.bySlot.get(slot)?.onSuccess(slot);
  }
  onFailure(slot: number, kind: OutlierFailure, now: number): boolean {
    return this.bySlot.get(slot)?.onFailure(slot, kind, now) ?? false;
  }
}

interface Running {
  spec: L4ListenerSpec;
  tcp: TcpProxy | null;
  udp: UdpProxy | null;
}

export class L4Runtime {
  readonly #table: SharedTable;
  readonly #ledger: ConnLedger;
  readonly #log: Logger;
  readonly #listeners = new Map<string, Running>();
  readonly #outliers = new OutlierRouter();
  #pools = new Map<string, L4Pool>();
  #poolConfigs = new Map<string, PoolConfig>();
  #draining = false;

  constructor(table: SharedTable, ledger: ConnLedger, log: Logger) {
    this.#table = table;
    this.#ledger = ledger;
    this.#log = log;
  }

  /**
   * Apply `config` with membership `backends` to the listeners named in `mine`: new pools for all,
   * start listeners not running yet, drain those no longer wanted. Rejects with the first listener
   * that cannot listen (at start that is fatal; on reload it is logged by the caller).
   */
  async apply(config: L4Config, backends: readonly Backend[], seed: number, mine: ReadonlySet<string>): Promise<void> {
    if (this.#draining) return;
    this.#buildPools(config, backends, seed);
    const wanted = config.listeners.filter((l) => mine.has(l.name));
    for (const [name, r] of this.#listeners) {
      const next = wanted.find((l) => l.name === name);
      if (next === undefined || !sameShape(next, r.spec)) {
        this.#listeners.delete(name);
        void this.#stop(r, config.drainTimeoutMs);
      }
    }
    const starting: Promise<unknown>[] = [];
    for (const spec of wanted) {
      const r = this.#listeners.get(spec.name);
      if (r !== undefined) {
        r.spec = spec;
        this.#route(r);
        continue;
      }
      starting.push(this.#start(spec));
    }
    await Promise.all(starting);
  }

  /** Stop accepting everywhere; resolves when every connection has ended or was closed at the timeout. */
  async drain(timeoutMs: number): Promise<void> {
    this.#draining = true;
    const all = [...this.#listeners.values()];
    this.#listeners.clear();
    await Promise.all(all.map((r) => this.#stop(r, timeoutMs)));
  }

  /** Crash path: close everything at once (the ledger is undone by the control plane). */
  abort(): void {
    void this.drain(0);
  }

  snapshot(): L4ListenerSnapshot[] {
    const out: L4ListenerSnapshot[] = [];
    for (const { spec, tcp, udp } of this.#listeners.values()) {
      const base = { name: spec.name, kind: spec.kind, address: `${spec.host}:${spec.port}`, pools: [] as L4ListenerSnapshot['pools'] };
      if (tcp !== null) {
        const s = tcp.stats;
        const open = tcp.openPoolBytes();
        const pools = [...tcp.poolStats].map(([pool, p]) => {
          const o = open.get(pool);
          return { pool, opened: p.opened, active: p.active, connectFailures: p.connectFailures, bytesIn: p.bytesIn + (o?.bytesIn ?? 0), bytesOut: p.bytesOut + (o?.bytesOut ?? 0) };
        });
        out.push({
          ...base,
          pools,
          accepted: s.accepted,
          opened: s.opened,
          active: s.active,
          connectFailures: s.connectFailures,
          retries: s.retries,
          noBackend: s.noBackend,
          rejected: s.rejected,
          idleClosed: s.idleClosed,
          // + 0: a count still at its -0 start (byte-count.ts) reports as 0.
          bytesIn: s.bytesIn + 0,
          bytesOut: s.bytesOut + 0,
        });
      } else if (udp !== null) {
        const s = udp.stats;
        const pool = spec.kind === 'udp' ? spec.pool : '';
        out.push({
          ...base,
          pools: [{ pool, opened: s.sessionsOpened, active: s.sessionsActive, connectFailures: s.backendErrors, bytesIn: s.bytesIn + 0, bytesOut: s.bytesOut + 0 }],
          accepted: s.sessionsOpened,
          opened: s.sessionsOpened,
          active: s.sessionsActive,
          connectFailures: s.backendErrors,
          retries: 0,
          noBackend: s.dropped,
          rejected: 0,
          idleClosed: s.sessionsExpired,
          bytesIn: s.bytesIn + 0,
          bytesOut: s.bytesOut + 0,
        });
      }
    }
    return out;
  }

  #buildPools(config: L4Config, backends: readonly Backend[], seed: number): void {
    const used = new Set(config.listeners.flatMap((l) => (l.kind === 'tls-passthrough' ? [...Object.values(l.sni), ...(l.defaultPool === null ? [] : [l.defaultPool])] : [l.pool])));
    const pools = new Map<string, L4Pool>();
    const configs = new Map<string, PoolConfig>();
    const detectors = new Map<number, OutlierDetector>();
    config.pools.forEach((settings, poolIndex) => {
      if (!used.has(settings.name)) return;
      const members: L4Backend[] = backends
        .filter((b) => b.pool === settings.name)
        .map((b) => ({ slot: b.slot, weight: b.weight, id: b.id, host: b.upstream.host, port: b.upstream.port }));
      const index = backends.find((b) => b.pool === settings.name)?.poolIndex ?? poolIndex;
      const policy = createPolicy(settings.balancer, this.#table, members, policyOptions(settings, seed, poolCell(P.RR_CURSOR, index)));
      const needsHash = settings.balancer === 'ring-hash' || settings.balancer === 'maglev';
      pools.set(settings.name, new L4Pool({ name: settings.name, backends: members, policy, proxyProtocol: settings.proxyProtocol ?? null, needsHash }));
      configs.set(settings.name, settings);
      const detector = new OutlierDetector(this.#table, outlierOptions(settings));
      detector.setMembers(members.map((m) => m.slot));
      for (const m of members) detectors.set(m.slot, detector);
    });
    this.#pools = pools;
    this.#poolConfigs = configs;
    this.#outliers.bySlot = detectors;
  }

  #pool(name: string): L4Pool {
    const p = this.#pools.get(name);
    if (p === undefined) throw new Error(`L4 pool "${name}" is not configured`);
    return p;
  }

  #sni(spec: L4ListenerSpec & { kind: 'tls-passthrough' }): SniTable {
    const names: Record<string, L4Pool> = {};
    for (const [name, pool] of Object.entries(spec.sni)) names[name] = this.#pool(pool);
    return new SniTable(names, spec.defaultPool === null ? null : this.#pool(spec.defaultPool));
  }

  /** The pool whose connection settings (timeouts, retries) a listener uses. */
  #settingsOf(spec: L4ListenerSpec): PoolConfig | undefined {
    const name = spec.kind === 'tls-passthrough' ? (spec.defaultPool ?? Object.values(spec.sni)[0]) : spec.pool;
    return name === undefined ? undefined : this.#poolConfigs.get(name);
  }

  async #start(spec: L4ListenerSpec): Promise<void> {
    const settings = this.#settingsOf(spec);
    const outliers = this.#outliers as unknown as OutlierDetector; // same two methods, see OutlierRouter
    if (spec.kind === 'udp') {
      const udp = new UdpProxy({ name: spec.name, host: spec.host, port: spec.port, table: this.#table, pool: this.#pool(spec.pool), ledger: this.#ledger, outliers, sessionIdleMs: spec.idleTimeoutMs });
      await udp.start();
      this.#listeners.set(spec.name, { spec, tcp: null, udp });
      return;
    }
    const routes = spec.kind === 'tcp' ? { pool: this.#pool(spec.pool) } : { sni: this.#sni(spec) };
    const tcp = new TcpProxy({
      name: spec.name,
      host: spec.host,
      port: spec.port,
      table: this.#table,
      ledger: this.#ledger,
      outliers,
      ...routes,
      acceptProxy: spec.acceptProxy,
      idleTimeoutMs: spec.idleTimeoutMs,
      connectTimeoutMs: settings?.connectTimeoutMs,
      retries: settings?.retries,
      onReject: (reason, client) => this.#log.info({ listener: spec.name, client, reason }, 'l4 connection rejected'),
    });
    await tcp.start();
    this.#listeners.set(spec.name, { spec, tcp, udp: null });
  }

  #route(r: Running): void {
    const spec = r.spec;
    if (spec.kind === 'udp') r.udp?.setPool(this.#pool(spec.pool));
    else if (spec.kind === 'tcp') r.tcp?.setRoutes({ pool: this.#pool(spec.pool) });
    else r.tcp?.setRoutes({ sni: this.#sni(spec) });
  }

  async #stop(r: Running, timeoutMs: number): Promise<void> {
    if (r.tcp !== null) await r.tcp.drain(timeoutMs);
    if (r.udp !== null) await r.udp.close();
  }
}

/** Whether a running listener can take `next` by a route swap (else it is restarted). */
function sameShape(next: L4ListenerSpec, running: L4ListenerSpec): boolean {
  return next.kind === running.kind && next.acceptProxy === running.acceptProxy && next.idleTimeoutMs === running.idleTimeoutMs;
}
