// The discovery keys of a pool in the config file: dns, etcd, file and registry. Each problem is
// reported where it is (pools.api.dns.type: ...), like every other key of the file.
//
//   dns:      { name: api.internal, type: A|AAAA|SRV, port: 8080, scheme: http, min_ttl_s: 1, max_ttl_s: 300 }
//   etcd:     { endpoints: ["http://127.0.0.1:2379"], prefix: /sluice/services/api/ }
//   file:     /etc/sluice/api.json        (relative: from the config file's directory)
//   registry: true                        (PUT /api/registry/:pool only, kept in memory)
// A pool with a source takes registrations too (into etcd when it has an etcd source) unless it
// says registry: false.

import { isAbsolute, resolve } from 'node:path';
import type { DiscoverySpec, DnsDiscovery, PoolDiscovery } from '../model/discovery.js';
import { at, checkKeys, readBoolean, readMap, readNumber, readString, readStrings, type FileMap, type Problems } from './file-values.js';

/** The pool keys this file reads. */
export const DISCOVERY_KEYS = ['dns', 'etcd', 'file', 'registry'] as const;

/** A TTL below this would re-resolve in a loop; Consul DNS answers TTL 0 by default. */
export const DEFAULT_MIN_TTL_S = 1;
/** Re-resolve at least this often even when the records say "a day". */
export const DEFAULT_MAX_TTL_S = 300;
const MAX_TTL_S = 86_400;
// RFC 1123 host names, and the "_service._proto.name" form of SRV owners.
const DNS_NAME = /^(?=.{1,253}\.?$)(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?$/;

/** Whether the pool map has any discovery key (then `upstreams` may be left out). */
export function hasDiscovery(map: FileMap): boolean {
  return DISCOVERY_KEYS.some((k) => map[k] !== undefined);
}

export function readDiscovery(map: FileMap, where: string, problems: Problems, baseDir: string): PoolDiscovery | undefined {
  if (!hasDiscovery(map)) return undefined;
  const sources: DiscoverySpec[] = [];
  if (map.dns !== undefined) push(sources, readDns(map.dns, at(where, 'dns'), problems));
  if (map.etcd !== undefined) push(sources, readEtcd(map.etcd, at(where, 'etcd'), problems));
  if (map.file !== undefined) {
    const path = readString(map.file, at(where, 'file'), problems);
    if (path !== undefined && path.trim() === '') problems.add(at(where, 'file'), 'expected the path of a JSON file of backends');
    else if (path !== undefined) sources.push({ kind: 'file', path: isAbsolute(path) ? path : resolve(baseDir, path) });
  }
  // The registration API is on for a pool with a source unless it says registry: false.
  let registry = sources.length > 0;
  if (map.registry !== undefined) {
    const on = readBoolean(map.registry, at(where, 'registry'), problems);
    if (on !== undefined) registry = on;
  }
  return { sources, registry };
}

function push(list: DiscoverySpec[], spec: DiscoverySpec | undefined): void {
  if (spec !== undefined) list.push(spec);
}

function readDns(node: unknown, where: string, problems: Problems): DnsDiscovery | undefined {
  const map = readMap(node, where, problems);
  if (map === undefined) return undefined;
  const before = problems.count;
  checkKeys(map, ['name', 'type', 'port', 'scheme', 'min_ttl_s', 'max_ttl_s'], where, problems);
  const name = map.name === undefined ? undefined : readString(map.name, at(where, 'name'), problems);
  if (map.name === undefined) problems.add(where, 'missing key "name" (the DNS name to resolve)');
  else if (name !== undefined && !DNS_NAME.test(name)) problems.add(at(where, 'name'), `${JSON.stringify(name)} is not a DNS name`);
  const typeText = map.type === undefined ? 'A' : readString(map.type, at(where, 'type'), problems);
  const type = typeText?.toUpperCase();
  if (type !== undefined && type !== 'A' && type !== 'AAAA' && type !== 'SRV') problems.add(at(where, 'type'), `got ${JSON.stringify(typeText)}, expected A, AAAA or SRV`);
  let port = 0;
  if (map.port !== undefined) {
    const p = readNumber(map.port, at(where, 'port'), problems);
    if (p !== undefined && (!Number.isInteger(p) || p < 1 || p > 65535)) problems.add(at(where, 'port'), `got ${p}, expected a port 1-65535`);
    else if (p !== undefined) port = p;
    if (type === 'SRV') problems.warn(at(where, 'port'), 'SRV records carry their own ports: this one is not used');
  } else if (type === 'A' || type === 'AAAA') problems.add(where, `missing key "port" (${type} records carry no port)`);
  const schemeText = map.scheme === undefined ? 'http' : readString(map.scheme, at(where, 'scheme'), problems);
  if (schemeText !== undefined && schemeText !== 'http' && schemeText !== 'https') problems.add(at(where, 'scheme'), `got ${JSON.stringify(schemeText)}, expected http or https`);
  const minTtl = ttl(map.min_ttl_s, DEFAULT_MIN_TTL_S, at(where, 'min_ttl_s'), problems);
  const maxTtl = ttl(map.max_ttl_s, DEFAULT_MAX_TTL_S, at(where, 'max_ttl_s'), problems);
  if (minTtl !== undefined && maxTtl !== undefined && minTtl > maxTtl) problems.add(at(where, 'min_ttl_s'), `${minTtl} is above max_ttl_s ${maxTtl}`);
  if (problems.count > before || name === undefined || minTtl === undefined || maxTtl === undefined) return undefined;
  return {
    kind: 'dns',
    name,
    type: type as DnsDiscovery['type'],
    port,
    scheme: schemeText === 'https' ? 'https:' : 'http:',
    minTtlMs: Math.round(minTtl * 1000),
    maxTtlMs: Math.round(maxTtl * 1000),
  };
}

function ttl(node: unknown, fallback: number, where: string, problems: Problems): number | undefined {
  if (node === undefined) return fallback;
  const n = readNumber(node, where, problems);
  if (n === undefined) return undefined;
  if (n < 0.1 || n > MAX_TTL_S) {
    problems.add(where, `got ${n}, expected seconds from 0.1 to ${MAX_TTL_S}`);
    return undefined;
  }
  return n;
}

function readEtcd(node: unknown, where: string, problems: Problems): DiscoverySpec | undefined {
  const map = readMap(node, where, problems);
  if (map === undefined) return undefined;
  const before = problems.count;
  checkKeys(map, ['endpoints', 'prefix'], where, problems);
  const endpoints = map.endpoints === undefined ? undefined : readStrings(map.endpoints, at(where, 'endpoints'), problems);
  if (map.endpoints === undefined) problems.add(where, 'missing key "endpoints" (etcd client URLs, such as http://127.0.0.1:2379)');
  else if (endpoints !== undefined && endpoints.length === 0) problems.add(at(where, 'endpoints'), 'at least one etcd client URL');
  endpoints?.forEach((e, i) => {
    let ok = false;
    try {
      const u = new URL(e);
      ok = (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' && u.pathname === '/' && u.search === '';
    } catch {
      ok = false;
    }
    if (!ok) problems.add(at(at(where, 'endpoints'), i), `${JSON.stringify(e)}: expected http(s)://host:port`);
  });
  const prefix = map.prefix === undefined ? undefined : readString(map.prefix, at(where, 'prefix'), problems);
  if (map.prefix === undefined) problems.add(where, 'missing key "prefix" (such as /sluice/services/api/)');
  else if (prefix !== undefined && (!prefix.startsWith('/') || !prefix.endsWith('/') || prefix.length < 2)) {
    problems.add(at(where, 'prefix'), `${JSON.stringify(prefix)}: expected a key prefix that starts and ends with "/", such as /sluice/services/api/`);
  }
  if (problems.count > before || endpoints === undefined || prefix === undefined) return undefined;
  return { kind: 'etcd', endpoints: endpoints.map((e) => e.replace(/\/$/, '')), prefix };
}
