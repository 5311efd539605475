// L4 listeners resolved against the pools: the environment's (SLUICE_TCP_LISTEN, SLUICE_UDP_LISTEN)
// first, then the file's. Each error names where the listener was declared. Also the L4 defaults
// of a pool that only L4 listeners use: least-conn (HAProxy's leastconn, the usual choice for long
// connections) unless the pool or SLUICE_BALANCER says otherwise, and TCP-connect health checks.
// A pool of udp:// upstreams has no generic health check: its checks are off and the ICMP errors
// its sessions see (udp-proxy.ts) feed outlier detection instead.

import {
  DEFAULT_L4_IDLE_MS,
  DEFAULT_UDP_SESSION_MS,
  l4ListenerName,
  listenerPools,
  type L4ListenerSpec,
} from '../model/listener.js';
import type { PoolSpec } from '../model/pool.js';
import type { RouteSpec } from '../model/route.js';
import { ConfigError } from './env.js';
import { ConfigFileError } from './file.js';
import type { Config } from './types.js';
import type { L4Binding } from './l4-parsers.js';

export interface L4Resolution {
  readonly listeners: L4ListenerSpec[];
  readonly errors: (ConfigError | ConfigFileError)[];
}

/** Env listeners as specs. */
export function envListeners(config: Config): L4ListenerSpec[] {
  const out: L4ListenerSpec[] = [];
  const one = (kind: 'tcp' | 'udp', variable: string, b: L4Binding, i: number): L4ListenerSpec => ({
    kind,
    name: l4ListenerName(kind, b.host, b.port),
    host: b.host,
    port: b.port,
    pool: b.pool,
    acceptProxy: kind === 'tcp' && config.tcpAcceptProxy,
    idleTimeoutMs: kind === 'udp' ? DEFAULT_UDP_SESSION_MS : DEFAULT_L4_IDLE_MS,
    origin: `${variable} item ${i + 1}`,
  });
  config.tcpListen.forEach((b, i) => out.push(one('tcp', 'SLUICE_TCP_LISTEN', b, i)));
  config.udpListen.forEach((b, i) => out.push(one('udp', 'SLUICE_UDP_LISTEN', b, i)));
  return out;
}

/**
 * Check `listeners` (env ones first) against `pools` and the other listeners. `file` names the
 * config file for errors of listeners declared there.
 */
export function checkListeners(config: Config, listeners: readonly L4ListenerSpec[], pools: readonly PoolSpec[], file: string): L4Resolution {
  const errors: (ConfigError | ConfigFileError)[] = [];
  const fail = (l: L4ListenerSpec, problem: string): void => {
    if (l.origin.startsWith('SLUICE_')) {
      const [variable, , item] = l.origin.split(' ');
      errors.push(new ConfigError(variable!, { value: `${l.host}:${l.port}=>${listenerPools(l)[0]}`, expected: problem, item: Number(item) }));
    } else errors.push(new ConfigFileError(file, l.origin, `expected ${problem}`));
  };
  const byName = new Map(pools.map((p) => [p.name, p]));
  const taken: { transport: 'tcp' | 'udp'; host: string; port: number; what: string }[] = [];
  if (config.listen !== null) taken.push({ transport: 'tcp', host: config.listen.host, port: config.listen.port, what: 'SLUICE_LISTEN' });
  if (config.tlsListen !== null) taken.push({ transport: 'tcp', host: config.tlsListen.host, port: config.tlsListen.port, what: 'SLUICE_TLS_LISTEN' });
  if (config.adminListen !== null) taken.push({ transport: 'tcp', host: config.adminListen.host, port: config.adminListen.port, what: 'SLUICE_ADMIN_LISTEN' });
  for (const l of listeners) {
    const transport = l.kind === 'udp' ? 'udp' : 'tcp';
    const clash = taken.find((t) => t.transport === transport && t.port === l.port && overlaps(t.host, l.host));
    if (clash !== undefined) fail(l, `a free ${transport.toUpperCase()} address (${l.host}:${l.port} is already ${clash.what}'s)`);
    taken.push({ transport, host: l.host, port: l.port, what: l.origin });
    for (const name of listenerPools(l)) {
      const pool = byName.get(name);
      if (pool === undefined) {
        fail(l, `a pool that exists (no pool "${name}"${name === 'default' ? ': set SLUICE_UPSTREAMS or declare it in the config file' : ''})`);
        continue;
      }
      const udp = pool.upstreams.filter((u) => u.protocol === 'udp:').length;
      if (l.kind === 'udp' && udp !== pool.upstreams.length) fail(l, `a pool of udp:// upstreams (pool "${name}" has ${pool.upstreams.length - udp} that are not)`);
      if (l.kind !== 'udp' && udp > 0) fail(l, `a pool of tcp:// (or http://) upstreams (pool "${name}" has udp:// ones)`);
    }
  }
  if (config.listen === null && config.tlsListen === null && listeners.length === 0) {
    errors.push(
      new ConfigError('SLUICE_LISTEN', {
        value: 'off',
        expected: 'a listener left to serve: with SLUICE_LISTEN=off, set SLUICE_TLS_LISTEN or declare an L4 listener (SLUICE_TCP_LISTEN, SLUICE_UDP_LISTEN or listeners: in the config file)',
      }),
    );
  }
  return { listeners: [...listeners], errors };
}

/** Routes may not send HTTP to a pool of udp:// upstreams. */
export function routeErrors(file: string, routes: readonly RouteSpec[], pools: readonly PoolSpec[]): ConfigFileError[] {
  const udp = new Set(pools.filter((p) => p.upstreams.some((u) => u.protocol === 'udp:')).map((p) => p.name));
  const out: ConfigFileError[] = [];
  routes.forEach((r, i) => {
    const a = r.action;
    const targets = a.kind === 'pool' ? [a.pool] : a.kind === 'split' ? a.targets.map((t) => t.pool) : [];
    for (const t of targets) if (udp.has(t)) out.push(new ConfigFileError(file, `routes[${i}] (name ${JSON.stringify(r.name)})`, `pool "${t}" has udp:// upstreams: it serves UDP listeners only`));
  });
  return out;
}

/**
 * L4 defaults for pools L4 listeners use and HTTP routes do not (or whose upstreams are all tcp://
 * or udp://, as with SLUICE_UPSTREAMS=tcp://... and no file); see the head of this file. `balancerSet`: whether
 * SLUICE_BALANCER was given (then it is every pool's default, L4 ones included).
 */
export function withL4Defaults(pools: readonly PoolSpec[], listeners: readonly L4ListenerSpec[], routes: readonly RouteSpec[] | null, balancerSet: boolean): PoolSpec[] {
  const l4 = new Set(listeners.flatMap(listenerPools));
  // No routes key: the catch-all route sends HTTP to "default".
  const routed = new Set<string>(routes === null ? ['default'] : []);
  for (const r of routes ?? []) {
    const a = r.action;
    if (a.kind === 'pool') routed.add(a.pool);
    if (a.kind === 'split') for (const t of a.targets) routed.add(t.pool);
  }
  return pools.map((p) => {
    const udp = p.upstreams.length > 0 && p.upstreams.every((u) => u.protocol === 'udp:');
    const l4Only = p.upstreams.length > 0 && p.upstreams.every((u) => u.protocol === 'udp:' || u.protocol === 'tcp:');
    if (!l4.has(p.name) || (routed.has(p.name) && !l4Only)) return p;
    const o = { ...p.overrides };
    if (o.balancer === undefined && !balancerSet) o.balancer = 'least-conn';
    if (o.healthPath === undefined) o.healthPath = '';
    if (udp) o.healthCheck = 'off';
    return { ...p, overrides: o };
  });
}

/** Two bind addresses that would take the same port: equal, or one is a wildcard of its family. */
function overlaps(a: string, b: string): boolean {
  if (a === b) return true;
  const any = (h: string) => h === '0.0.0.0' || h === '::';
  return any(a) || any(b);
}
