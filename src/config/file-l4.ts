// The config file's L4 parts (docs/l4.md): the `listeners:` list and a pool's `proxy_protocol`.
//   - { tcp: "0.0.0.0:5432", pool: pg }
//   - { tls_passthrough: "0.0.0.0:443", sni: { api.example.com: api, "*.example.com": web }, default: web }
//   - { udp: "0.0.0.0:53", pool: dns }
// each optionally with accept_proxy_protocol (TCP kinds) and idle_timeout_ms. Pool names are
// checked against the pools the file (and SLUICE_UPSTREAMS) declare; whether a pool's upstreams
// suit the listener is checked once pools are merged (l4-check.ts).

import {
  DEFAULT_L4_IDLE_MS,
  DEFAULT_UDP_SESSION_MS,
  l4ListenerName,
  type L4ListenerSpec,
} from '../model/listener.js';
import { at, checkKeys, describe, isMap, readBoolean, readList, readMap, readNumber, readString, type FileMap, type Problems } from './file-values.js';
import { didYouMean } from './suggest.js';
import { listenAddress } from './value-parsers.js';

const KINDS = ['tcp', 'tls_passthrough', 'udp'] as const;
const COMMON = ['accept_proxy_protocol', 'idle_timeout_ms'];
const KEYS: Record<(typeof KINDS)[number], string[]> = {
  tcp: ['tcp', 'pool', ...COMMON],
  tls_passthrough: ['tls_passthrough', 'sni', 'default', ...COMMON],
  udp: ['udp', 'pool', 'idle_timeout_ms'],
};
/** One hour, as for every *_MS variable: a larger value is a unit mix-up more often than a wish. */
const MAX_IDLE_MS = 3_600_000;
// RFC 1123 labels, lower case (SNI is compared lower-cased), with an optional leading "*.".
const SNI_NAME = /^(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

export function readProxyProtocol(value: unknown, where: string, problems: Problems): 'v1' | 'v2' | undefined {
  if (value === undefined || value === null || value === false || value === 'off') return undefined;
  if (value === 'v1' || value === 'v2') return value;
  if (value === 1 || value === 2) return `v${value}`;
  problems.add(where, `expected v1, v2 or off, got ${describe(value)}`);
  return undefined;
}

/** `pools`: every pool name that exists (file and SLUICE_UPSTREAMS). */
export function readListeners(node: unknown, pools: ReadonlySet<string>, problems: Problems): L4ListenerSpec[] {
  const list = readList(node, 'listeners', problems);
  if (list === undefined) return [];
  const out: L4ListenerSpec[] = [];
  list.forEach((item, i) => {
    const where = at('listeners', i);
    const map = readMap(item, where, problems);
    if (map === undefined) return;
    const spec = readListener(map, where, pools, problems);
    if (spec !== undefined) out.push(spec);
  });
  return out;
}

function readListener(map: FileMap, where: string, pools: ReadonlySet<string>, problems: Problems): L4ListenerSpec | undefined {
  const kinds = KINDS.filter((k) => map[k] !== undefined);
  if (kinds.length !== 1) {
    problems.add(where, kinds.length === 0 ? 'expected one of the keys tcp, tls_passthrough or udp ("host:port")' : `one listener is one of ${kinds.join(', ')}, not several`);
    return undefined;
  }
  const kind = kinds[0]!;
  const before = problems.count;
  checkKeys(map, KEYS[kind], where, problems);
  const addressText = readString(map[kind], at(where, kind), problems);
  const address = addressText === undefined ? undefined : listenAddress(addressText.trim());
  if (address !== undefined && !address.ok) problems.add(at(where, kind), `got ${JSON.stringify(addressText)}, expected ${address.issues[0]!.expected}`);
  const acceptProxy = map.accept_proxy_protocol === undefined ? false : readBoolean(map.accept_proxy_protocol, at(where, 'accept_proxy_protocol'), problems);
  const idle = map.idle_timeout_ms === undefined ? (kind === 'udp' ? DEFAULT_UDP_SESSION_MS : DEFAULT_L4_IDLE_MS) : readIdle(map.idle_timeout_ms, at(where, 'idle_timeout_ms'), problems);
  const poolRef = (key: string, value: unknown): string | undefined => {
    const name = readString(value, at(where, key), problems);
    if (name === undefined) return undefined;
    if (!pools.has(name)) problems.add(at(where, key), `unknown pool ${JSON.stringify(name)}${didYouMean(name, pools)}`);
    return name;
  };
  let pool: string | undefined;
  let sni: Record<string, string> = {};
  let defaultPool: string | null = null;
  if (kind === 'tls_passthrough') {
    if (map.sni === undefined && map.default === undefined) problems.add(where, 'a TLS passthrough listener needs sni: { name: pool }, default: pool, or both');
    if (map.sni !== undefined) sni = readSni(map.sni, at(where, 'sni'), poolRef, problems);
    if (map.default !== undefined) defaultPool = poolRef('default', map.default) ?? null;
  } else {
    if (map.pool === undefined) problems.add(where, 'missing key "pool"');
    else pool = poolRef('pool', map.pool);
  }
  if (problems.count > before || address === undefined || !address.ok || acceptProxy === undefined || idle === undefined) return undefined;
  const { host, port } = address.value;
  const base = { host, port, acceptProxy, idleTimeoutMs: idle, origin: where };
  if (kind === 'tls_passthrough') return { ...base, kind: 'tls-passthrough', name: l4ListenerName('tls-passthrough', host, port), sni, defaultPool };
  if (kind === 'tcp') return { ...base, kind: 'tcp', name: l4ListenerName('tcp', host, port), pool: pool! };
  return { ...base, kind: 'udp', name: l4ListenerName('udp', host, port), pool: pool! };
}

function readIdle(value: unknown, where: string, problems: Problems): number | undefined {
  const n = readNumber(value, where, problems);
  if (n === undefined) return undefined;
  if (Number.isInteger(n) && n >= 0 && n <= MAX_IDLE_MS) return n;
  problems.add(where, `got ${n}, expected an integer from 0 (never) to ${MAX_IDLE_MS}`);
  return undefined;
}

function readSni(
  value: unknown,
  where: string,
  poolRef: (key: string, value: unknown) => string | undefined,
  problems: Problems,
): Record<string, string> {
  if (!isMap(value)) {
    readMap(value, where, problems);
    return {};
  }
  const out: Record<string, string> = {};
  for (const [name, pool] of Object.entries(value)) {
    const lower = name.toLowerCase();
    if (!SNI_NAME.test(lower)) {
      problems.add(at(where, name), 'expected a server name ("api.example.com") or a wildcard with a leading "*." ("*.example.com")');
      continue;
    }
    if (Object.hasOwn(out, lower)) problems.add(at(where, name), `the same name as another key (names compare without case)`);
    const p = poolRef(`sni.${name}`, pool);
    if (p !== undefined) out[lower] = p;
  }
  return out;
}
