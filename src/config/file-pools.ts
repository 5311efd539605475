// The `pools:` section of the config file: each pool's upstreams and the settings it overrides.
// Every setting goes through the parser of the SLUICE_* variable that sets its default, so a value
// means the same, and is checked the same, in the file as in the environment.

import { isAbsolute, resolve } from 'node:path';
import type { PoolSettings, PoolSpec } from '../model/pool.js';
import type { Upstream } from '../model/upstream.js';
import { at, checkKeys, readBoolean, readList, readMap, readNumber, readString, readStrings, type FileMap, type Problems } from './file-values.js';
import { upstream } from './value-parsers.js';
import { readProxyProtocol } from './file-l4.js';
import { DISCOVERY_KEYS, hasDiscovery, readDiscovery } from './file-discovery.js';
import { variableFor } from './variables.js';

/** How a file value becomes the text the variable's parser reads. */
type Kind =
  | 'number'
  | 'string'
  /** true/false for a 1/0 flag variable. */
  | 'flag'
  /** true/false for an on/off variable. */
  | 'switch'
  /** "2xx,301" or a list of codes and classes. */
  | 'statuses'
  /** A file path; relative ones are read from the config file's directory. */
  | 'path';

interface PoolKey {
  /** Where it sits in a pool: "balancer", "health.interval_ms". */
  readonly key: string;
  readonly kind: Kind;
}

// Keyed by setting so the compiler rejects a pool setting without a file key.
export const POOL_KEYS: { readonly [K in keyof PoolSettings]: PoolKey } = {
  balancer: { key: 'balancer', kind: 'string' },
  connectTimeoutMs: { key: 'connect_timeout_ms', kind: 'number' },
  requestTimeoutMs: { key: 'request_timeout_ms', kind: 'number' },
  idleTimeoutMs: { key: 'idle_timeout_ms', kind: 'number' },
  maxBodyBytes: { key: 'max_body_bytes', kind: 'number' },
  upstreamConnections: { key: 'upstream_connections', kind: 'number' },
  retries: { key: 'retries', kind: 'number' },
  retryBudgetPercent: { key: 'retry_budget_percent', kind: 'number' },
  maxRequestsPerBackend: { key: 'max_requests_per_backend', kind: 'number' },
  upstreamPipeline: { key: 'pipeline', kind: 'number' },
  upstreamPipelineHolMs: { key: 'pipeline_hol_ms', kind: 'number' },
  slowStartMs: { key: 'slow_start_ms', kind: 'number' },
  panicThresholdPercent: { key: 'panic_threshold_percent', kind: 'number' },
  hashKey: { key: 'hash_key', kind: 'string' },
  leastRequestBias: { key: 'least_request_bias', kind: 'number' },
  maglevTableSize: { key: 'maglev_table_size', kind: 'number' },
  ewmaDecayMs: { key: 'ewma.decay_ms', kind: 'number' },
  ewmaDefaultRttMs: { key: 'ewma.default_rtt_ms', kind: 'number' },
  healthCheck: { key: 'health.enabled', kind: 'switch' },
  healthPath: { key: 'health.path', kind: 'string' },
  healthExpect: { key: 'health.expect', kind: 'statuses' },
  healthIntervalMs: { key: 'health.interval_ms', kind: 'number' },
  healthTimeoutMs: { key: 'health.timeout_ms', kind: 'number' },
  healthyThreshold: { key: 'health.healthy_threshold', kind: 'number' },
  unhealthyThreshold: { key: 'health.unhealthy_threshold', kind: 'number' },
  outlierConsecutive5xx: { key: 'outlier.consecutive_5xx', kind: 'number' },
  outlierConsecutiveFailures: { key: 'outlier.consecutive_failures', kind: 'number' },
  outlierBaseEjectionMs: { key: 'outlier.base_ejection_ms', kind: 'number' },
  outlierMaxEjectionMs: { key: 'outlier.max_ejection_ms', kind: 'number' },
  outlierMaxEjectionPercent: { key: 'outlier.max_ejection_percent', kind: 'number' },
  upstreamCa: { key: 'tls.ca', kind: 'path' },
  upstreamInsecure: { key: 'tls.insecure', kind: 'flag' },
};

const FIELDS = Object.keys(POOL_KEYS) as (keyof PoolSettings)[];
/** Keys of a pool map, and of each nested group (health, outlier, ewma, tls). */
const GROUPS = new Map<string, string[]>([['', ['upstreams', 'proxy_protocol', ...DISCOVERY_KEYS]]]);
for (const field of FIELDS) {
  const [group, key] = POOL_KEYS[field].key.includes('.') ? POOL_KEYS[field].key.split('.') : ['', POOL_KEYS[field].key];
  if (group !== '' && !GROUPS.get('')?.includes(group)) GROUPS.get('')?.push(group);
  GROUPS.set(group, [...(GROUPS.get(group) ?? []), key]);
}

// Pool names end up in metric labels, logs and URLs: keep them plain.
const POOL_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** `baseDir`: the config file's directory, for relative tls.ca paths. */
export function readPools(node: unknown, problems: Problems, baseDir: string): PoolSpec[] {
  const pools = readMap(node, 'pools', problems);
  if (pools === undefined) return [];
  const out: PoolSpec[] = [];
  for (const [name, body] of Object.entries(pools)) {
    const where = at('pools', name);
    if (!POOL_NAME.test(name)) problems.add(where, 'a pool name is lower-case letters, digits, ".", "_" and "-", starting with a letter or digit, at most 64 characters');
    const map = readMap(body, where, problems);
    if (map === undefined) continue;
    const spec = readPool(name, map, where, problems, baseDir);
    if (spec !== undefined) out.push(spec);
  }
  return out;
}

function readPool(name: string, map: FileMap, where: string, problems: Problems, baseDir: string): PoolSpec | undefined {
  const before = problems.count;
  checkKeys(map, GROUPS.get('') ?? [], where, problems);
  for (const [group, keys] of GROUPS) {
    if (group !== '' && map[group] !== undefined) {
      const sub = readMap(map[group], at(where, group), problems);
      if (sub !== undefined) checkKeys(sub, keys, at(where, group), problems);
    }
  }
  const discovered = hasDiscovery(map);
  const upstreams = map.upstreams === undefined ? (discovered ? [] : undefined) : readUpstreams(map.upstreams, at(where, 'upstreams'), problems, discovered);
  if (map.upstreams === undefined && !discovered) problems.add(where, 'missing key "upstreams" (a list of backend URLs), or a discovery source (dns, etcd, file, registry)');
  const beforeDiscovery = problems.count;
  const discovery = readDiscovery(map, where, problems, baseDir);
  // Only when the keys themselves are fine: a source with a mistake is reported as that mistake.
  if (map.upstreams === undefined && problems.count === beforeDiscovery && discovery !== undefined && discovery.sources.length === 0 && !discovery.registry) {
    problems.add(where, 'no backends can reach this pool: no "upstreams", no discovery source, and registry: false');
  }
  const overrides: Partial<PoolSettings> = {};
  for (const field of FIELDS) readSetting(field, map, where, overrides, problems, baseDir);
  const proxyProtocol = readProxyProtocol(map.proxy_protocol, at(where, 'proxy_protocol'), problems);
  if (problems.count > before || upstreams === undefined) return undefined;
  const spec: PoolSpec = {
    name,
    upstreams,
    overrides,
    ...(proxyProtocol === undefined ? {} : { proxyProtocol }),
    ...(discovery === undefined ? {} : { discovery }),
  };
  if (overrides.upstreamCa !== undefined && overrides.upstreamCa !== '' && !upstreams.some((u) => u.protocol === 'https:')) {
    problems.warn(at(where, 'tls.ca'), 'set, but no upstream of this pool is https://: it is not used');
  }
  return spec;
}

function readUpstreams(node: unknown, where: string, problems: Problems, discovered: boolean): Upstream[] | undefined {
  const list = readStrings(node, where, problems);
  if (list === undefined) return undefined;
  if (list.length === 0 && !discovered) {
    problems.add(where, 'at least one upstream URL');
    return undefined;
  }
  const out: Upstream[] = [];
  const seen = new Map<string, number>();
  list.forEach((text, i) => {
    const parsed = upstream(text.trim());
    if (!parsed.ok) {
      for (const issue of parsed.issues) problems.add(at(where, i), `${JSON.stringify(text)}: expected ${issue.expected}`);
      return;
    }
    const first = seen.get(parsed.value.url);
    if (first !== undefined) problems.add(at(where, i), `${JSON.stringify(text)} is the same backend as item ${first}`);
    else seen.set(parsed.value.url, i);
    out.push(parsed.value);
  });
  return out;
}

function readSetting<K extends keyof PoolSettings>(
  field: K,
  pool: FileMap,
  where: string,
  target: Partial<PoolSettings>,
  problems: Problems,
  baseDir: string,
): void {
  const { key, kind } = POOL_KEYS[field];
  const [group, leaf] = key.includes('.') ? key.split('.') : ['', key];
  const container = group === '' ? pool : pool[group];
  if (container === undefined || !(typeof container === 'object' && container !== null && !Array.isArray(container))) return;
  const value = (container as FileMap)[leaf];
  if (value === undefined) return;
  const path = `${where}.${key}`;
  const text = asText(value, kind, path, problems, baseDir);
  if (text === undefined) return;
  const parsed = variableFor(field).parse(text);
  if (parsed.ok) target[field] = parsed.value;
  else for (const issue of parsed.issues) problems.add(path, `got ${JSON.stringify(issue.value)}, expected ${issue.expected}`);
}

function asText(value: unknown, kind: Kind, where: string, problems: Problems, baseDir: string): string | undefined {
  switch (kind) {
    case 'number': {
      const n = readNumber(value, where, problems);
      return n === undefined ? undefined : String(n);
    }
    case 'string':
      return readString(value, where, problems)?.trim();
    case 'flag': {
      const b = readBoolean(value, where, problems);
      return b === undefined ? undefined : b ? '1' : '0';
    }
    case 'switch': {
      const b = readBoolean(value, where, problems);
      return b === undefined ? undefined : b ? 'on' : 'off';
    }
    case 'statuses': {
      if (typeof value === 'string') return value;
      const list = readList(value, where, problems);
      if (list === undefined) return undefined;
      if (list.every((v) => typeof v === 'string' || typeof v === 'number')) return list.join(',');
      problems.add(where, 'expected status codes and classes, such as [200, "3xx"] or "2xx,301"');
      return undefined;
    }
    case 'path': {
      const p = readString(value, where, problems);
      return p === undefined || p === '' || isAbsolute(p) ? p : resolve(baseDir, p);
    }
  }
}
