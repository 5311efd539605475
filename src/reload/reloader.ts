// SIGHUP: re-read the configuration and apply it to the running process without dropping a
// connection or failing a request. An invalid configuration is refused with its errors logged and
// the running one is kept, whole. Settings bound at start (listen address, worker count, header
// limit, the env file's own path) keep their running values and are logged as needing a restart.
//
// Swapping backends, with health checks on, happens in two steps so that no request lands on an
// unchecked backend and none is left without one: first the new backends join next to the old
// ones (out of rotation until their first check passes), then, once each has had its first check
// (or the check timeout has passed), the old ones leave. Requests in flight to a removed backend
// finish on their own connection; it only stops getting new ones.

import type { Logger } from 'pino';
import type { Config, Upstream } from '../config/types.js';
import { VARIABLE_SPECS } from '../config/variables.js';
import type { Backend } from '../http/context.js';
import { healthOptions, type ActiveChecker } from '../health/active-checker.js';
import { configureUpstreamTls } from '../upstream/tls-options.js';
import type { ConfigSource } from './config-source.js';

/**
 * Config fields a reload cannot change; each needs a restart. Listeners (client, TLS, admin) are
 * bound at start; uWS reads the header limit once per process; the TLS app and the admin server
 * are built from their settings at start.
 */
export const RESTART_ONLY = [
  'listen',
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
] as const satisfies readonly (keyof Config)[];

/** Past the check timeout, time for the probe's own timer and the event loop to report it. */
const SETTLE_SLACK_MS = 250;

export type ReloadResult =
  | { readonly ok: true; readonly changed: string[]; readonly restartRequired: string[] }
  | { readonly ok: false; readonly reason: string };

export interface ReloadTargets {
  /** Membership.assign: slots for the new upstream list, published with a generation bump. */
  readonly membership: { assign(upstreams: readonly Upstream[]): Backend[] };
  /** Supervisor.setConfig: every worker (and any restarted later) gets this config and membership. */
  readonly workers: { setConfig(config: Config, backends: Backend[]): void };
  readonly checker: ActiveChecker;
  /** The control plane's root logger (its level follows SLUICE_LOG_LEVEL). */
  readonly log: Logger;
}

export interface RunningState {
  readonly config: Config;
  /** The upstreams in use: config.upstreams, or the demo pool's. */
  readonly upstreams: readonly Upstream[];
  readonly backends: Backend[];
  /** Running on the demo pool (SLUICE_UPSTREAMS was empty at start). */
  readonly demo: boolean;
}

export class Reloader {
  readonly #source: ConfigSource;
  readonly #targets: ReloadTargets;
  readonly #demo: boolean;
  #config: Config;
  #upstreams: readonly Upstream[];
  #backends: Backend[];
  /** Reloads run one at a time, in signal order. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(source: ConfigSource, state: RunningState, targets: ReloadTargets) {
    this.#source = source;
    this.#targets = targets;
    this.#config = state.config;
    this.#upstreams = state.upstreams;
    this.#backends = state.backends;
    this.#demo = state.demo;
  }

  get config(): Config {
    return this.#config;
  }
  get backends(): readonly Backend[] {
    return this.#backends;
  }

  /** Re-read SLUICE_ENV_FILE and apply it. Never rejects. */
  reload(): Promise<ReloadResult> {
    return this.#serial(() => this.#reload());
  }

  /** Apply a validated configuration, after any reload still running. Never rejects. */
  apply(next: Config): Promise<ReloadResult> {
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
    const file = this.#source.path;
    if (file === '') {
      const reason = 'SLUICE_ENV_FILE is not set, so there is nothing to re-read';
      log.warn(`reload: ${reason}; configuration unchanged`);
      return { ok: false, reason };
    }
    log.info({ file }, 'reload requested');
    const loaded = await this.#source.load();
    for (const warning of loaded.warnings) log.warn({ file }, warning);
    if (!loaded.ok) {
      log.error({ file, errors: loaded.errors }, 'reload refused: the new configuration is invalid; the running one is kept');
      return { ok: false, reason: loaded.errors.join('; ') };
    }
    return this.#apply(loaded.config);
  }

  async #apply(next: Config): Promise<ReloadResult> {
    const { log, checker, membership, workers } = this.#targets;
    const current = this.#config;
    const effective: Config = { ...next };
    const restartRequired: string[] = [];
    for (const key of RESTART_ONLY) {
      if (!same(current[key], next[key])) restartRequired.push(variableName(key));
      keep(effective, current, key);
    }
    const upstreams = effective.upstreams.length > 0 ? effective.upstreams : this.#demo ? this.#upstreams : null;
    if (upstreams === null) {
      const reason = 'SLUICE_UPSTREAMS is empty (the demo pool only starts at start-up)';
      log.error({ reason }, 'reload refused: the running configuration is kept');
      return { ok: false, reason };
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
    const changed = VARIABLE_SPECS.filter((s) => !same(current[s.key], effective[s.key])).map((s) => s.name);
    if (changed.length === 0) {
      log.info('reload: configuration unchanged');
      return { ok: true, changed, restartRequired };
    }

    log.level = effective.logLevel;
    checker.reconfigure(healthOptions(effective));
    let backends = this.#backends;
    if (!same(this.#upstreams, upstreams)) {
      try {
        backends = await this.#swap(effective, upstreams);
      } catch (err) {
        // Membership refused (table full): nothing was published, so only the checker goes back.
        checker.reconfigure(healthOptions(current));
        configureUpstreamTls(current);
        const reason = (err as Error).message;
        log.error({ reason }, 'reload refused: the running configuration is kept');
        return { ok: false, reason };
      }
    }
    workers.setConfig(effective, backends);
    this.#config = effective;
    this.#upstreams = upstreams;
    this.#backends = backends;
    log.info({ changed, backends: upstreams.length }, 'configuration reloaded');
    return { ok: true, changed, restartRequired };
  }

  /** Publish `upstreams` (in two steps when new backends must pass a check first); returns the membership. */
  async #swap(config: Config, upstreams: readonly Upstream[]): Promise<Backend[]> {
    const { log, checker, membership, workers } = this.#targets;
    const known = new Set(this.#upstreams.map((u) => u.url));
    const wanted = new Set(upstreams.map((u) => u.url));
    const added = upstreams.filter((u) => !known.has(u.url));
    const removed = this.#upstreams.filter((u) => !wanted.has(u.url));
    if (checker.enabled && added.length > 0 && removed.length > 0) {
      const staged = membership.assign([...upstreams, ...removed]);
      checker.track(staged);
      workers.setConfig(config, staged);
      const fresh = staged.filter((b) => !known.has(b.upstream.url)).map((b) => b.slot);
      await checker.settled(fresh, config.healthTimeoutMs + SETTLE_SLACK_MS);
      const failing = checker
        .snapshot()
        .filter((h) => fresh.includes(h.slot) && h.state !== 'healthy')
        .map((h) => h.url);
      if (failing.length > 0) log.warn({ failing }, 'reload: new backends not passing health checks yet; they join when they pass');
    }
    const backends = membership.assign(upstreams);
    checker.track(backends);
    return backends;
  }
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
