// SIGHUP: re-read the configuration (SLUICE_ENV_FILE over the environment, and the SLUICE_CONFIG
// file of pools and routes) and apply it to the running process without dropping a connection or
// failing a request. An invalid configuration is refused with its named errors logged and the
// running one is kept, whole. Settings bound at start (listen address, worker count, header limit,
// the env file's own path) keep their running values and are logged as needing a restart.
//
// The route table and the pool set swap atomically: the workers get them in one 'config' message
// with the membership of every pool. Pools keep their backends' slots (matched by pool and URL), so
// an unchanged pool keeps its health, load, EWMA and warm connections. When the routes change, the
// route hit counters are zeroed, so that a count always belongs to one table.
//
// New backends, with health checks on in their pool, join in two steps so that no request lands on
// an unchecked backend and none is left without one: first they are checked next to the running
// configuration (backends of pools the workers already route to are published beside the old
// ones, out of rotation until their first check passes), then, once each has had its first check
// (or its pool's check timeout has passed), the new configuration is published and the old
// backends leave. Requests in flight to a removed backend finish on their own connection.
//
// Discovery (src/discovery) changes membership through the same path: the reloader keeps the
// configuration as loaded (`base`), and the coordinator composes each discovering pool's backends
// into it, on every SIGHUP and whenever a source reports a change (membershipChanged).

import type { Logger } from 'pino';
import type { Config, ResolvedConfig } from '../config/types.js';
import { VARIABLE_SPECS } from '../config/variables.js';
import { hasNoUpstreams, withDemoUpstreams } from '../demo/echo-backends.js';
import type { PoolConfig } from '../model/pool.js';
import type { Backend, Upstream } from '../model/upstream.js';
import { healthOptions, poolHealthOptions, type ActiveChecker } from '../health/active-checker.js';
import type { PoolMembers } from '../state/membership.js';
import { configureUpstreamTls } from '../upstream/tls-options.js';
import type { ConfigSource } from './config-source.js';

/**
 * Config fields a reload cannot change; each needs a restart. Listeners (client, TLS, admin) are
 * bound at start; uWS reads the header limit once per process; the TLS app and the admin server
 * are built from their settings at start.
 */
export const RESTART_ONLY = [
  'listen',
  'l4Threads',
  'l4YoungGenerationMb',
  'workers',
  'maxHeaderBytes',
  'envFile',
  'adminListen',
  'adminToken',
  'tlsListen',
  'tlsCert',
  'tlsKey',
  'tlsKeyPassphrase',
  'tlsCertsDir',
  'tlsCiphers',
  'redirectHttps',
  'hstsMaxAge',
  'dnsServers',
] as const satisfies readonly (keyof Config)[];

/** Past the check timeout, time for the probe's own timer and the event loop to report it. */
const SETTLE_SLACK_MS = 250;

export type ReloadResult =
  | { readonly ok: true; readonly changed: string[]; readonly restartRequired: string[] }
  | { readonly ok: false; readonly reason: string };

export interface ReloadTargets {
  /** Membership.assignPools: slots for every pool's upstreams, published with a generation bump. */
  readonly membership: { assignPools(pools: readonly PoolMembers[]): Backend[] };
  /** Supervisor.setConfig: every worker (and any restarted later) gets this config and membership. */
  readonly workers: { setConfig(config: ResolvedConfig, backends: Backend[]): void };
  readonly checker: ActiveChecker;
  /** The shared table: its route hit counters are zeroed when the routes change. */
  readonly table: { resetRouteHits(): void };
  /** The control plane's root logger (its level follows SLUICE_LOG_LEVEL). */
  readonly log: Logger;
}

export interface RunningState {
  /** As running: in demo mode, the pool "default" holds the demo backends. */
  readonly config: ResolvedConfig;
  readonly backends: Backend[];
  /** The demo backends when Sluice started without any upstream; null otherwise. */
  readonly demo: readonly Upstream[] | null;
  /** The configuration as loaded, when discovery composed `config` from it. */
  readonly base?: ResolvedConfig;
}

/** What the reloader needs of discovery (the coordinator satisfies it). */
export interface MembershipSource {
  /** Follow a (re)loaded configuration: start and stop sources. */
  configure(config: ResolvedConfig): void;
  /** The configuration with each discovering pool's current backends. */
  compose(config: ResolvedConfig): ResolvedConfig;
}

export class Reloader {
  readonly #source: ConfigSource;
  #discovery: MembershipSource | null = null;
  /** The configuration as loaded, before discovery composed backends in. */
  #base: ResolvedConfig;
  readonly #targets: ReloadTargets;
  readonly #demo: readonly Upstream[] | null;
  #config: ResolvedConfig;
  #backends: Backend[];
  /** A discovery job queued and not started yet (membershipChanged). */
  #queuedDiscovery: Promise<ReloadResult> | null = null;
  /** Reloads run one at a time, in signal order. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(source: ConfigSource, state: RunningState, targets: ReloadTargets) {
    this.#source = source;
    this.#targets = targets;
    this.#config = state.config;
    this.#base = state.base ?? state.config;
    this.#backends = state.backends;
    this.#demo = state.demo;
  }

  /** Discovery composes its backends into every configuration applied from now on. */
  useDiscovery(discovery: MembershipSource): void {
    this.#discovery = discovery;
  }

  /**
   * A discovery source changed: recompose the running configuration's pools and apply them. Calls
   * made while one is still waiting its turn share it (it composes what is current when it runs),
   * so a burst of changes during a slow two-step swap queues one job, not one per change.
   */
  membershipChanged(): Promise<ReloadResult> {
    if (this.#queuedDiscovery !== null) return this.#queuedDiscovery;
    const job = this.#serial(() => {
      this.#queuedDiscovery = null;
      const d = this.#discovery;
      return d === null ? Promise.resolve({ ok: true, changed: [], restartRequired: [] }) : this.#apply(d.compose(this.#base), 'discovery');
    });
    this.#queuedDiscovery = job;
    return job;
  }

  get config(): ResolvedConfig {
    return this.#config;
  }
  get backends(): readonly Backend[] {
    return this.#backends;
  }

  /** Re-read SLUICE_ENV_FILE and SLUICE_CONFIG and apply them. Never rejects. */
  reload(): Promise<ReloadResult> {
    return this.#serial(() => this.#reload());
  }

  /** Apply a validated configuration, after any reload still running. Never rejects. */
  apply(next: ResolvedConfig): Promise<ReloadResult> {
    return this.#serial(() => this.#apply(next));
  }

  #serial(job: () => Promise<ReloadResult>): Promise<ReloadResult> {
    const run = this.#queue.then(job);
    this.#queue = run.catch(() => undefined);
    return run.catch((err: Error) => {
      this.#targets.log.error({ err: err.message, stack: err.stack }, 'reload failed; the running configuration is kept');
      return { ok: false, reason: err.message };
    });
  }

  async #reload(): Promise<ReloadResult> {
    const log = this.#targets.log;
    const files = [this.#source.path, this.#config.configFile].filter((f) => f !== '');
    if (files.length === 0) {
      const reason = 'neither SLUICE_ENV_FILE nor SLUICE_CONFIG is set, so there is nothing to re-read';
      log.warn(`reload: ${reason}; configuration unchanged`);
      return { ok: false, reason };
    }
    log.info({ files }, 'reload requested');
    const loaded = await this.#source.load();
    for (const warning of loaded.warnings) log.warn({ files }, warning);
    if (!loaded.ok) {
      log.error({ files, errors: loaded.errors }, 'reload refused: the new configuration is invalid; the running one is kept');
      return { ok: false, reason: loaded.errors.join('; ') };
    }
    const d = this.#discovery;
    if (d === null) return this.#apply(loaded.config);
    d.configure(loaded.config);
    const result = await this.#apply(d.compose(loaded.config));
    if (result.ok) this.#base = loaded.config;
    else d.configure(this.#base);
    return result;
  }

  /** `why`: a reload (SIGHUP, or apply()) or a discovery source's change (logged differently). */
  async #apply(next: ResolvedConfig, why: 'reload' | 'discovery' = 'reload'): Promise<ReloadResult> {
    const { log, checker, workers, table } = this.#targets;
    const current = this.#config;
    let effective: ResolvedConfig = { ...next };
    const restartRequired: string[] = [];
    for (const key of RESTART_ONLY) {
      if (!same(current[key], next[key])) restartRequired.push(variableName(key));
      keep(effective, current, key);
    }
    if (hasNoUpstreams(effective)) {
      if (this.#demo === null) {
        const reason = 'SLUICE_UPSTREAMS is empty and no pool lists an upstream (the demo pool only starts at start-up)';
        log.error({ reason }, 'reload refused: the running configuration is kept');
        return { ok: false, reason };
      }
      effective = withDemoUpstreams(effective, this.#demo);
    }
    try {
      // The control plane's HTTP checks of https backends use these too; a CA file that cannot be
      // read is a reason to refuse, before anything changed.
      configureUpstreamTls(effective);
    } catch (err) {
      const reason = (err as Error).message;
      log.error({ reason }, 'reload refused: the running configuration is kept');
      return { ok: false, reason };
    }
    if (restartRequired.length > 0) {
      log.warn({ variables: restartRequired }, 'reload: these settings change only on restart and keep their running values');
    }
    const routesChanged = !same(current.routes, effective.routes);
    const poolsChanged = changedPools(current.pools, effective.pools);
    const changed: string[] = VARIABLE_SPECS.filter((s) => !same(current[s.key], effective[s.key])).map((s) => s.name);
    // Without a file, the pool "default" is the variables' doing, which `changed` already names.
    const fromFile = current.configFile !== '' || effective.configFile !== '';
    if (fromFile) changed.push(...poolsChanged.map((name) => `pools.${name}`));
    if (routesChanged) changed.push('routes');
    if (!same(current.listeners, effective.listeners)) changed.push('listeners');
    if (changed.length === 0 && poolsChanged.length === 0) {
      if (why === 'reload') log.info('reload: configuration unchanged');
      return { ok: true, changed, restartRequired };
    }

    log.level = effective.logLevel;
    // Only when they changed: reconfiguring moves every waiting check onto a new interval, which a
    // stream of discovery changes would keep pushing back.
    const checks = (c: ResolvedConfig): unknown => [healthOptions(c), [...poolHealthOptions(c.pools)]];
    if (!same(checks(current), checks(effective))) checker.reconfigure(healthOptions(effective), poolHealthOptions(effective.pools));
    let backends = this.#backends;
    if (!same(members(current.pools), members(effective.pools))) {
      try {
        backends = await this.#swap(effective);
      } catch (err) {
        // Membership refused (table full): nothing was published, so only the checker goes back.
        checker.reconfigure(healthOptions(current), poolHealthOptions(current.pools));
        configureUpstreamTls(current);
        const reason = (err as Error).message;
        log.error({ reason }, 'reload refused: the running configuration is kept');
        return { ok: false, reason };
      }
    }
    // Zeroed just before the new table goes out: hits counted from here on belong to it (a worker
    // still on the old table for a moment may add a few, a bounded and logged-nowhere blur).
    if (routesChanged) table.resetRouteHits();
    workers.setConfig(effective, backends);
    this.#config = effective;
    const before = this.#backends;
    this.#backends = backends;
    if (why === 'discovery') {
      const was = new Set(before.map((b) => key(b.pool, b.upstream.url)));
      const now = new Set(backends.map((b) => key(b.pool, b.upstream.url)));
      const added = backends.filter((b) => !was.has(key(b.pool, b.upstream.url))).map((b) => `${b.pool} ${b.upstream.url} (${b.upstream.source ?? 'static'})`);
      const removed = before.filter((b) => !now.has(key(b.pool, b.upstream.url))).map((b) => `${b.pool} ${b.upstream.url}`);
      log.info({ added, removed, backends: backends.length }, 'membership changed');
    } else log.info({ changed, backends: backends.length, pools: effective.pools.length, routes: effective.routes.length }, 'configuration reloaded');
    return { ok: true, changed, restartRequired };
  }

  /**
   * The new membership of every pool (in two steps when new backends of a checked pool must pass a
   * check first, and would otherwise replace backends or make up a whole new pool); returns it.
   */
  async #swap(config: ResolvedConfig): Promise<Backend[]> {
    const { log, checker, membership, workers } = this.#targets;
    const running = this.#config;
    const known = new Set(this.#backends.map((b) => key(b.pool, b.upstream.url)));
    const wanted = new Set(config.pools.flatMap((p) => p.upstreams.map((u) => key(p.name, u.url))));
    const serving = new Set(this.#backends.map((b) => b.pool));
    const added = config.pools.flatMap((p) => p.upstreams.filter((u) => !known.has(key(p.name, u.url))).map(() => p.name));
    const removed = this.#backends.filter((b) => !wanted.has(key(b.pool, b.upstream.url)));
    const checked = added.filter((pool) => checker.enabledFor(pool));
    if (checked.length > 0 && (removed.length > 0 || checked.some((pool) => !serving.has(pool)))) {
      // Step 1: every new backend gets a slot and its checks; the workers keep the running pools
      // and routes, with the new backends of those pools beside the old ones (held out of rotation).
      const staged = membership.assignPools(stagedMembers(config.pools, removed));
      checker.track(staged);
      const routed = new Set(running.pools.map((p) => p.name));
      const fresh = staged.filter((b) => !known.has(key(b.pool, b.upstream.url)));
      // Only worth a message when a pool the workers route to gains backends (a new pool's wait
      // for its checks happens on the control plane alone).
      if (fresh.some((b) => routed.has(b.pool))) workers.setConfig(running, staged.filter((b) => routed.has(b.pool)));
      const timeout = Math.max(...fresh.map((b) => checker.optionsFor(b.pool).timeoutMs));
      await checker.settled(
        fresh.map((b) => b.slot),
        timeout + SETTLE_SLACK_MS,
      );
      const slots = new Set(fresh.map((b) => b.slot));
      const failing = checker
        .snapshot()
        .filter((h) => slots.has(h.slot) && h.state !== 'healthy')
        .map((h) => `${h.pool} ${h.url}`);
      if (failing.length > 0) log.warn({ failing }, 'reload: new backends not passing health checks yet; they join when they pass');
    }
    const backends = membership.assignPools(config.pools);
    checker.track(backends);
    return backends;
  }
}

function key(pool: string, url: string): string {
  return `${pool}\0${url}`;
}

/** What membership depends on: pool names, order and upstreams (weights included). */
function members(pools: readonly PoolConfig[]): unknown {
  return pools.map((p) => [p.name, p.upstreams]);
}

/** Names of pools added, removed or changed (upstreams or any setting). */
function changedPools(before: readonly PoolConfig[], after: readonly PoolConfig[]): string[] {
  const old = new Map(before.map((p) => [p.name, p]));
  const names: string[] = [];
  for (const p of after) if (!same(old.get(p.name), p)) names.push(p.name);
  const now = new Set(after.map((p) => p.name));
  for (const p of before) if (!now.has(p.name)) names.push(p.name);
  return names;
}

/** The new pools with each one's removed backends after its new list; pools that are going, last. */
function stagedMembers(pools: readonly PoolConfig[], removed: readonly Backend[]): PoolMembers[] {
  const leaving = new Map<string, Upstream[]>();
  for (const b of removed) {
    const list = leaving.get(b.pool);
    if (list) list.push(b.upstream);
    else leaving.set(b.pool, [b.upstream]);
  }
  const out: PoolMembers[] = pools.map((p) => ({ name: p.name, upstreams: [...p.upstreams, ...(leaving.get(p.name) ?? [])] }));
  const staying = new Set(pools.map((p) => p.name));
  for (const [name, upstreams] of leaving) if (!staying.has(name)) out.push({ name, upstreams });
  return out;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function keep<K extends keyof Config>(target: Config, source: Config, key: K): void {
  target[key] = source[key];
}

function variableName(key: keyof Config): string {
  return VARIABLE_SPECS.find((s) => s.key === key)?.name ?? key;
}
