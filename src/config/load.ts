// The whole configuration: SLUICE_* variables (env.ts), then the config file's pools and routes
// (file.ts), resolved into one ResolvedConfig. Used at start, by --check and --explain, and on
// SIGHUP. Precedence, per setting of a pool: the pool's own key in the file, else the environment
// variable (or its default). SLUICE_UPSTREAMS is the pool "default": when both it and the file's
// pools.default list upstreams, the environment's list wins (with a warning); the file's other
// settings for "default" still apply. Without a file: one pool "default", one catch-all route.

import { readFile } from 'node:fs/promises';
import { CAPACITY } from '../model/limits.js';
import { DEFAULT_POOL, resolvePool, type PoolSpec } from '../model/pool.js';
import { listenerPools } from '../model/listener.js';
import { catchAllRoute, type RouteSpec } from '../model/route.js';
import { compileRoutes, RouteTableError } from '../model/route-table.js';
import { ConfigError, parseEnv } from './env.js';
import { ConfigFileError, readConfigFile } from './file.js';
import type { Config, ResolvedConfig } from './types.js';
import { checkListeners, envListeners, routeErrors, withL4Defaults } from './l4-check.js';

export type LoadError = ConfigError | ConfigFileError;

export type LoadResult =
  | { readonly ok: true; readonly config: ResolvedConfig; readonly warnings: string[] }
  | { readonly ok: false; readonly errors: LoadError[]; readonly warnings: string[] };

export async function loadConfig(env: NodeJS.ProcessEnv): Promise<LoadResult> {
  const parsed = parseEnv(env);
  if (!parsed.ok) return parsed;
  const config = parsed.config;
  const balancerSet = (env.SLUICE_BALANCER ?? '').trim() !== '';
  if (config.configFile === '') {
    const listeners = envListeners(config);
    const specs = withL4Defaults([{ name: DEFAULT_POOL, upstreams: config.upstreams, overrides: {} }], listeners, null, balancerSet);
    const l4 = checkListeners(config, listeners, specs, '');
    if (l4.errors.length > 0) return { ok: false, errors: l4.errors, warnings: parsed.warnings };
    return { ok: true, config: { ...config, pools: specs.map((p) => resolvePool(p, config)), routes: [catchAllRoute(DEFAULT_POOL)], listeners }, warnings: parsed.warnings };
  }
  const external = new Set(config.upstreams.length > 0 ? [DEFAULT_POOL] : []);
  const envL4Pools = new Set(envListeners(config).flatMap(listenerPools));
  const file = await readConfigFile(config.configFile, { externalPools: external, envL4Pools });
  const warnings = [...parsed.warnings, ...file.warnings];
  if (!file.ok) return { ok: false, errors: file.errors, warnings };
  const listeners = [...envListeners(config), ...file.content.listeners];
  const merged = withL4Defaults(mergeDefaultPool(config, file.content.pools, warnings), listeners, file.content.routes, balancerSet);
  const errors: LoadError[] = [...capacityErrors(config.configFile, merged), ...(await caFileErrors(config.configFile, merged))];
  const routes = file.content.routes ?? [catchAllRoute(DEFAULT_POOL)];
  errors.push(...compileErrors(config.configFile, routes));
  if (file.content.routes !== null) errors.push(...routeErrors(config.configFile, routes, merged));
  errors.push(...checkListeners(config, listeners, merged, config.configFile).errors);
  if (errors.length > 0) return { ok: false, errors, warnings };
  const pools = merged.map((spec) => resolvePool(spec, config));
  const fallback = pools.find((p) => p.name === DEFAULT_POOL);
  // Until every reader of config.upstreams reads pools, it holds the default pool's list.
  const upstreams = fallback === undefined ? config.upstreams : [...fallback.upstreams];
  return { ok: true, config: { ...config, upstreams, pools, routes, listeners }, warnings };
}

/** No file: SLUICE_UPSTREAMS as the pool "default" (empty: the demo pool) and one catch-all route. */
export function withoutFile(config: Config): ResolvedConfig {
  const pool = resolvePool({ name: DEFAULT_POOL, upstreams: config.upstreams, overrides: {} }, config);
  return { ...config, pools: [pool], routes: [catchAllRoute(DEFAULT_POOL)], listeners: envListeners(config) };
}

function mergeDefaultPool(config: Config, pools: readonly PoolSpec[], warnings: string[]): PoolSpec[] {
  if (config.upstreams.length === 0) return [...pools];
  const declared = pools.find((p) => p.name === DEFAULT_POOL);
  if (declared === undefined) return [{ name: DEFAULT_POOL, upstreams: config.upstreams, overrides: {} }, ...pools];
  warnings.push(`${config.configFile}: pools.${DEFAULT_POOL}.upstreams: SLUICE_UPSTREAMS is set and wins over this list`);
  return pools.map((p) => (p === declared ? { ...p, upstreams: config.upstreams } : p));
}

/** Every upstream of every pool takes a slot of the shared table. */
function capacityErrors(file: string, pools: readonly PoolSpec[]): ConfigFileError[] {
  const total = pools.reduce((n, p) => n + p.upstreams.length, 0);
  if (total <= CAPACITY) return [];
  return [new ConfigFileError(file, 'pools', `${total} upstreams in all, more than the ${CAPACITY} the shared table holds`)];
}

/** A pool's tls.ca must be a readable PEM bundle; checked now, not at the first https request. */
async function caFileErrors(file: string, pools: readonly PoolSpec[]): Promise<ConfigFileError[]> {
  const errors: ConfigFileError[] = [];
  for (const pool of pools) {
    const ca = pool.overrides.upstreamCa;
    if (ca === undefined || ca === '') continue;
    const where = `pools.${pool.name}.tls.ca`;
    try {
      const text = await readFile(ca, 'utf8');
      if (!text.includes('-----BEGIN CERTIFICATE-----')) errors.push(new ConfigFileError(file, where, `${ca}: no PEM certificate in it`));
    } catch (err) {
      errors.push(new ConfigFileError(file, where, `${ca} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`));
    }
  }
  return errors;
}

/** The file was checked route by route; compiling is the last word (a failure here is a bug). */
function compileErrors(file: string, routes: readonly RouteSpec[]): ConfigFileError[] {
  try {
    compileRoutes(routes);
    return [];
  } catch (err) {
    if (!(err instanceof RouteTableError)) throw err;
    return err.errors.map((e) => new ConfigFileError(file, `routes[${e.index}] (name ${JSON.stringify(e.route)})`, e.problems.join('; ')));
  }
}
