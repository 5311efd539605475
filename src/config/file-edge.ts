// The edge keys of a route (and of the top-level `defaults:` block): rate_limit, max_in_flight,
// auth, ip_allow, ip_deny, cors, read into an EdgeSpec (src/model/edge.ts) with every problem named.
// Files a policy names (jwks_file, htpasswd) are read here, relative to the config file, and their
// contents carried in the spec: a bad file fails --check and a reload, never a worker.

import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { createLocalJWKSet } from 'jose';
import type {
  ApiKeysSpec,
  AuthSpec,
  BasicSpec,
  ClaimRule,
  CorsSpec,
  EdgeSpec,
  ForwardAuthSpec,
  IntrospectionSpec,
  JwtSpec,
  RateKey,
  RateLimitSpec,
  TokenSource,
} from '../model/edge.js';
import { parseCidr } from '../edge/cidr.js';
import { MAX_DEPTH_MS } from '../edge/rate-table.js';
import { at, checkKeys, defined, describe, readBoolean, readList, readMap, readNumber, readString, readStrings, type FileMap, type Problems } from './file-values.js';

export const EDGE_KEYS = ['rate_limit', 'max_in_flight', 'auth', 'ip_allow', 'ip_deny', 'cors'] as const;

const AUTH_KINDS = ['jwt', 'introspection', 'api_keys', 'basic', 'forward'] as const;
const HMAC = ['HS256', 'HS384', 'HS512'];
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const PERIODS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** Default cache sizes: bounded memory per route and worker. */
const JWT_CACHE = 10_000;
const INTROSPECTION_CACHE = 10_000;

export interface EdgeRead {
  readonly edge: EdgeSpec | undefined;
  /** Request headers the policy sets itself (forwarded claims, copied auth headers, a stripped token): removed from the client's request first. */
  readonly removes: readonly string[];
}

/**
 * The edge keys of `map` over those of `defaults` (a route's own key replaces the default's).
 * `action` is the route's action kind: edge keys only mean something with pool or split.
 */
export function readEdge(map: FileMap, defaults: FileMap | undefined, where: string, problems: Problems, baseDir: string, action: string | undefined): EdgeRead {
  const own = EDGE_KEYS.filter((k) => map[k] !== undefined && map[k] !== 'none');
  if (own.length > 0 && action !== undefined && action !== 'pool' && action !== 'split') {
    for (const k of own) problems.add(`${where}: ${k}`, `only means something with pool or split (this route answers with ${action})`);
    return { edge: undefined, removes: [] };
  }
  if (action !== undefined && action !== 'pool' && action !== 'split') return { edge: undefined, removes: [] };
  const merged: FileMap = {};
  const origin: Record<string, string> = {};
  for (const k of EDGE_KEYS) {
    // `none` opts a route out of a key the defaults set.
    if (map[k] === 'none') continue;
    if (map[k] !== undefined) {
      merged[k] = map[k];
      origin[k] = `${where}: ${k}`;
    } else if (defaults !== undefined && defaults[k] !== undefined) {
      merged[k] = defaults[k];
      origin[k] = `${where}: ${k} (from defaults)`;
    }
  }
  if (Object.keys(merged).length === 0) return { edge: undefined, removes: [] };
  const removes: string[] = [];
  const auth = merged.auth === undefined ? undefined : readAuth(merged.auth, origin.auth!, problems, baseDir, removes);
  const hasClaims = auth?.jwt !== undefined || auth?.introspection !== undefined;
  const rateLimit = merged.rate_limit === undefined ? undefined : readRateLimits(merged.rate_limit, origin.rate_limit!, problems, hasClaims);
  let maxInFlight: number | undefined;
  if (merged.max_in_flight !== undefined) {
    maxInFlight = readNumber(merged.max_in_flight, origin.max_in_flight!, problems);
    if (maxInFlight !== undefined && (!Number.isInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > 1_000_000)) {
      problems.add(origin.max_in_flight!, `got ${maxInFlight}, expected a whole number from 1 to 1000000`);
      maxInFlight = undefined;
    }
  }
  const ipAllow = merged.ip_allow === undefined ? undefined : readCidrs(merged.ip_allow, origin.ip_allow!, problems);
  const ipDeny = merged.ip_deny === undefined ? undefined : readCidrs(merged.ip_deny, origin.ip_deny!, problems);
  const cors = merged.cors === undefined ? undefined : readCors(merged.cors, origin.cors!, problems);
  return { edge: defined({ rateLimit, maxInFlight, auth, ipAllow, ipDeny, cors }), removes };
}

/** The top-level defaults: block: edge keys only. */
export function checkDefaults(node: unknown, problems: Problems): FileMap | undefined {
  const map = readMap(node, 'defaults', problems);
  if (map === undefined) return undefined;
  checkKeys(map, EDGE_KEYS, 'defaults', problems);
  return map;
}

function readCidrs(node: unknown, where: string, problems: Problems): string[] | undefined {
  const list = readStrings(node, where, problems);
  if (list === undefined) return undefined;
  let ok = true;
  list.forEach((c, i) => {
    const r = parseCidr(c);
    if (typeof r === 'string') {
      problems.add(at(where, i), r);
      ok = false;
    }
  });
  return ok ? list : undefined;
}

/** "100/s", "1000/m", "5/10s", "2/h". */
export function parseRate(text: string): { count: number; periodMs: number } | string {
  const m = /^\s*(\d+)\s*\/\s*(\d*)\s*(ms|s|m|h|d)\s*$/.exec(text);
  if (m === null) return `got ${JSON.stringify(text)}, expected <count>/<period> such as 100/s, 1000/m, 5/10s (periods: ms, s, m, h, d)`;
  const count = Number(m[1]);
  const periodMs = (m[2] === '' ? 1 : Number(m[2])) * PERIODS[m[3]!]!;
  if (count < 1 || count > 1e9) return `got ${JSON.stringify(text)}: the count must be 1 to 1000000000`;
  if (periodMs < 1) return `got ${JSON.stringify(text)}: the period must be at least 1 ms`;
  return { count, periodMs };
}

function readRateLimits(node: unknown, where: string, problems: Problems, hasClaims: boolean): RateLimitSpec[] | undefined {
  const list = readList(node, where, problems);
  if (list === undefined) return undefined;
  const out: RateLimitSpec[] = [];
  const names = new Set<string>();
  list.forEach((item, i) => {
    const w = at(where, i);
    const map = readMap(item, w, problems);
    if (map === undefined) return;
    checkKeys(map, ['key', 'rate', 'burst', 'global', 'fail', 'name'], w, problems);
    const before = problems.count;
    let key: RateKey | undefined;
    const keyText = map.key === undefined ? 'client_ip' : readString(map.key, at(w, 'key'), problems);
    if (keyText !== undefined) {
      const m = /^(header|jwt):(.+)$/.exec(keyText.trim());
      if (keyText === 'client_ip' || keyText === 'route') key = { kind: keyText };
      else if (m !== null && m[1] === 'header' && TOKEN.test(m[2]!)) key = { kind: 'header', name: m[2]!.toLowerCase() };
      else if (m !== null && m[1] === 'jwt') {
        if (!hasClaims) problems.add(at(w, 'key'), `${JSON.stringify(keyText)} needs auth: jwt or auth: introspection on the route`);
        key = { kind: 'jwt', claim: m[2]! };
      } else problems.add(at(w, 'key'), `got ${JSON.stringify(keyText)}, expected client_ip, route, "header:<name>" or "jwt:<claim>"`);
    }
    let rate: { count: number; periodMs: number } | undefined;
    if (map.rate === undefined) problems.add(w, 'missing key "rate" (such as rate: 100/s)');
    else {
      const text = readString(map.rate, at(w, 'rate'), problems);
      const r = text === undefined ? undefined : parseRate(text);
      if (typeof r === 'string') problems.add(at(w, 'rate'), r);
      else rate = r;
    }
    let burst = rate?.count;
    if (map.burst !== undefined) {
      burst = readNumber(map.burst, at(w, 'burst'), problems);
      if (burst !== undefined && (!Number.isInteger(burst) || burst < 1 || burst > 1e9)) {
        problems.add(at(w, 'burst'), `got ${burst}, expected a whole number from 1 to 1000000000`);
        burst = undefined;
      }
    }
    if (rate !== undefined && burst !== undefined && (rate.periodMs / rate.count) * (burst + 1) > MAX_DEPTH_MS) {
      problems.add(w, `burst ${burst} at ${rate.count} per ${rate.periodMs} ms takes more than 6 days to refill; lower the burst or raise the rate`);
    }
    let global: string | null = null;
    if (map.global !== undefined) {
      const g = readString(map.global, at(w, 'global'), problems);
      if (g !== undefined) {
        try {
          const u = new URL(g);
          if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error();
          global = g;
        } catch {
          problems.add(at(w, 'global'), `got ${JSON.stringify(g.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@'))}, expected a URL such as redis://127.0.0.1:6379 or rediss://host:6380/0`);
        }
      }
    }
    let fail: 'open' | 'closed' = 'open';
    if (map.fail !== undefined) {
      const f = readString(map.fail, at(w, 'fail'), problems);
      if (f === 'open' || f === 'closed') fail = f;
      else if (f !== undefined) problems.add(at(w, 'fail'), `got ${JSON.stringify(f)}, expected open or closed`);
      if (map.global === undefined) problems.add(at(w, 'fail'), 'only means something with global (a Redis URL)');
    }
    let name = key === undefined ? 'limit' : key.kind;
    if (map.name !== undefined) {
      const n = readString(map.name, at(w, 'name'), problems);
      if (n !== undefined && !/^[a-z][a-z0-9_.-]{0,31}$/.test(n)) problems.add(at(w, 'name'), `got ${JSON.stringify(n)}, expected lower-case letters, digits, "_", "." or "-" (at most 32, starting with a letter)`);
      else if (n !== undefined) name = n;
    } else if (names.has(name)) name = `${name}-${i}`;
    if (names.has(name)) problems.add(at(w, 'name'), `${JSON.stringify(name)} is already used by another limit of this route`);
    names.add(name);
    if (problems.count === before && key !== undefined && rate !== undefined && burst !== undefined) {
      out.push({ key, count: rate.count, periodMs: rate.periodMs, burst, global, fail, name });
    }
  });
  return out.length === list.length ? out : undefined;
}

function readAuth(node: unknown, where: string, problems: Problems, baseDir: string, removes: string[]): AuthSpec | undefined {
  const map = readMap(node, where, problems);
  if (map === undefined) return undefined;
  checkKeys(map, AUTH_KINDS, where, problems);
  const given = AUTH_KINDS.filter((k) => map[k] !== undefined);
  if (given.length !== 1) {
    problems.add(where, given.length === 0 ? `give one of ${AUTH_KINDS.join(', ')}` : `give one kind of auth, not ${given.join(' and ')}`);
    return undefined;
  }
  const kind = given[0]!;
  const w = at(where, kind);
  const m = readMap(map[kind], w, problems);
  if (m === undefined) return undefined;
  switch (kind) {
    case 'jwt': {
      const jwt = readJwt(m, w, problems, baseDir);
      if (jwt === undefined) return undefined;
      for (const f of jwt.forwardClaims) removes.push(f.header);
      if (jwt.stripToken) removes.push('authorization');
      return { jwt };
    }
    case 'introspection': {
      const introspection = readIntrospection(m, w, problems);
      if (introspection === undefined) return undefined;
      for (const f of introspection.forwardClaims) removes.push(f.header);
      return { introspection };
    }
    case 'api_keys': {
      const apiKeys = readApiKeys(m, w, problems);
      return apiKeys === undefined ? undefined : { apiKeys };
    }
    case 'basic': {
      const basic = readBasic(m, w, problems, baseDir);
      return basic === undefined ? undefined : { basic };
    }
    case 'forward': {
      const forward = readForward(m, w, problems);
      if (forward === undefined) return undefined;
      removes.push(...forward.copyHeaders);
      return { forward };
    }
  }
}

function filePath(p: string, baseDir: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

function readFileText(p: string, where: string, problems: Problems, baseDir: string): string | undefined {
  try {
    return readFileSync(filePath(p, baseDir), 'utf8');
  } catch (err) {
    problems.add(where, `cannot read ${JSON.stringify(p)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    return undefined;
  }
}

function readHttpUrl(node: unknown, where: string, problems: Problems): string | undefined {
  const text = readString(node, where, problems);
  if (text === undefined) return undefined;
  try {
    const u = new URL(text);
    if (u.protocol === 'http:' || u.protocol === 'https:') return text;
  } catch {
    /* reported below */
  }
  problems.add(where, `got ${JSON.stringify(text)}, expected an http:// or https:// URL`);
  return undefined;
}

function readSources(node: unknown, where: string, problems: Problems): TokenSource[] | undefined {
  if (node === undefined) return [{ kind: 'bearer' }];
  const list = readStrings(node, where, problems);
  if (list === undefined) return undefined;
  const out: TokenSource[] = [];
  list.forEach((s, i) => {
    const m = /^(cookie|query):(.+)$/.exec(s);
    if (s === 'bearer') out.push({ kind: 'bearer' });
    else if (m !== null) out.push({ kind: m[1] as 'cookie' | 'query', name: m[2]! });
    else problems.add(at(where, i), `got ${JSON.stringify(s)}, expected bearer, "cookie:<name>" or "query:<name>"`);
  });
  return out.length === list.length && out.length > 0 ? out : undefined;
}

/** required_claims: [sub] and claims: { role: admin, scope: [read, write] } into one rule list. */
function readClaimRules(m: FileMap, where: string, problems: Problems): ClaimRule[] | undefined {
  const rules: ClaimRule[] = [];
  if (m.required_claims !== undefined) {
    const list = readStrings(m.required_claims, at(where, 'required_claims'), problems);
    if (list === undefined) return undefined;
    for (const claim of list) rules.push({ claim, values: [] });
  }
  if (m.claims !== undefined) {
    const map = readMap(m.claims, at(where, 'claims'), problems);
    if (map === undefined) return undefined;
    for (const [claim, v] of Object.entries(map)) {
      const w = at(at(where, 'claims'), claim);
      const values = typeof v === 'string' ? [v] : Array.isArray(v) ? readStrings(v, w, problems) : undefined;
      if (values === undefined) {
        if (!Array.isArray(v)) problems.add(w, `expected a string or a list of strings, got ${describe(v)}`);
        return undefined;
      }
      rules.push({ claim, values });
    }
  }
  return rules;
}

function readForwardClaims(node: unknown, where: string, problems: Problems): { claim: string; header: string }[] | undefined {
  if (node === undefined) return [];
  const map = readMap(node, where, problems);
  if (map === undefined) return undefined;
  const out: { claim: string; header: string }[] = [];
  for (const [claim, v] of Object.entries(map)) {
    const header = readString(v, at(where, claim), problems);
    if (header === undefined) return undefined;
    if (!TOKEN.test(header) || ['host', 'content-length', 'transfer-encoding', 'connection'].includes(header.toLowerCase())) {
      problems.add(at(where, claim), `got ${JSON.stringify(header)}, expected a header name Sluice may set`);
      return undefined;
    }
    out.push({ claim, header: header.toLowerCase() });
  }
  return out;
}

function wholeNumber(m: FileMap, key: string, where: string, problems: Problems, dflt: number, min: number, max: number): number | undefined {
  if (m[key] === undefined) return dflt;
  const n = readNumber(m[key], at(where, key), problems);
  if (n === undefined) return undefined;
  if (!Number.isInteger(n) || n < min || n > max) {
    problems.add(at(where, key), `got ${n}, expected a whole number from ${min} to ${max}`);
    return undefined;
  }
  return n;
}

function readJwt(m: FileMap, where: string, problems: Problems, baseDir: string): JwtSpec | undefined {
  checkKeys(m, ['jwks_file', 'jwks_url', 'jwks_cooldown_ms', 'secret', 'algorithms', 'issuer', 'audience', 'leeway_s', 'required_claims', 'claims', 'from', 'forward_claims', 'strip_token', 'cache_size'], where, problems);
  const before = problems.count;
  const sources = ['jwks_file', 'jwks_url', 'secret'].filter((k) => m[k] !== undefined);
  if (sources.length !== 1) problems.add(where, sources.length === 0 ? 'give one key source: jwks_file, jwks_url or secret' : `give one key source, not ${sources.join(' and ')}`);
  let jwks: unknown | null = null;
  if (m.jwks_file !== undefined) {
    const p = readString(m.jwks_file, at(where, 'jwks_file'), problems);
    const text = p === undefined ? undefined : readFileText(p, at(where, 'jwks_file'), problems, baseDir);
    if (text !== undefined) {
      try {
        jwks = JSON.parse(text);
        createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0]);
      } catch (err) {
        problems.add(at(where, 'jwks_file'), `${JSON.stringify(p)} is not a JWKS document ({ "keys": [...] }): ${(err as Error).message}`);
      }
    }
  }
  const jwksUrl = m.jwks_url === undefined ? null : (readHttpUrl(m.jwks_url, at(where, 'jwks_url'), problems) ?? null);
  // An unknown kid refetches the URL at most this often: a stream of forged kids costs one fetch per 30 s.
  const jwksCooldownMs = wholeNumber(m, 'jwks_cooldown_ms', where, problems, 30_000, 0, 600_000);
  if (m.jwks_cooldown_ms !== undefined && m.jwks_url === undefined) problems.add(at(where, 'jwks_cooldown_ms'), 'only means something with jwks_url');
  let secret: string | null = null;
  if (m.secret !== undefined) {
    secret = readString(m.secret, at(where, 'secret'), problems) ?? null;
    if (secret !== null && Buffer.byteLength(secret) < 32) problems.add(at(where, 'secret'), 'an HMAC secret needs at least 32 bytes (RFC 7518 §3.2 asks for the hash size)');
  }
  const dflt = secret !== null ? ['HS256'] : ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'];
  let algorithms = m.algorithms === undefined ? dflt : readStrings(m.algorithms, at(where, 'algorithms'), problems);
  if (algorithms !== undefined) {
    const allowed = secret !== null ? HMAC : ASYMMETRIC;
    for (const a of algorithms) {
      if (!allowed.includes(a)) problems.add(at(where, 'algorithms'), `${JSON.stringify(a)} ${[...HMAC, ...ASYMMETRIC].includes(a) ? `does not go with ${secret !== null ? 'a secret' : 'a JWKS'}` : 'is not supported'}; expected some of ${allowed.join(', ')}`);
    }
    if (algorithms.length === 0) problems.add(at(where, 'algorithms'), 'an empty list accepts no token');
  }
  const issuer = m.issuer === undefined ? null : (readString(m.issuer, at(where, 'issuer'), problems) ?? null);
  const audience = m.audience === undefined ? [] : typeof m.audience === 'string' ? [m.audience] : readStrings(m.audience, at(where, 'audience'), problems);
  const leewaySec = wholeNumber(m, 'leeway_s', where, problems, 30, 0, 600);
  const claims = readClaimRules(m, where, problems);
  const from = readSources(m.from, at(where, 'from'), problems);
  const forwardClaims = readForwardClaims(m.forward_claims, at(where, 'forward_claims'), problems);
  const stripToken = m.strip_token === undefined ? false : readBoolean(m.strip_token, at(where, 'strip_token'), problems);
  const cacheSize = wholeNumber(m, 'cache_size', where, problems, JWT_CACHE, 0, 1_000_000);
  if (problems.count > before || algorithms === undefined || audience === undefined || leewaySec === undefined || claims === undefined || from === undefined || forwardClaims === undefined || stripToken === undefined || cacheSize === undefined || jwksCooldownMs === undefined) return undefined;
  return { jwks, jwksUrl, jwksCooldownMs, secret, algorithms, issuer, audience, leewaySec, claims, from, forwardClaims, stripToken, cacheSize: Math.max(1, cacheSize) };
}

function readIntrospection(m: FileMap, where: string, problems: Problems): IntrospectionSpec | undefined {
  checkKeys(m, ['url', 'client_id', 'client_secret', 'from', 'required_claims', 'claims', 'forward_claims', 'cache_size', 'cache_ttl_ms', 'timeout_ms'], where, problems);
  const before = problems.count;
  if (m.url === undefined) problems.add(where, 'missing key "url" (the introspection endpoint)');
  const url = m.url === undefined ? undefined : readHttpUrl(m.url, at(where, 'url'), problems);
  const clientId = m.client_id === undefined ? null : (readString(m.client_id, at(where, 'client_id'), problems) ?? null);
  const clientSecret = m.client_secret === undefined ? null : (readString(m.client_secret, at(where, 'client_secret'), problems) ?? null);
  const from = readSources(m.from, at(where, 'from'), problems);
  const claims = readClaimRules(m, where, problems);
  const forwardClaims = readForwardClaims(m.forward_claims, at(where, 'forward_claims'), problems);
  const cacheSize = wholeNumber(m, 'cache_size', where, problems, INTROSPECTION_CACHE, 1, 1_000_000);
  const cacheTtlMs = wholeNumber(m, 'cache_ttl_ms', where, problems, 60_000, 0, 3_600_000);
  const timeoutMs = wholeNumber(m, 'timeout_ms', where, problems, 2000, 1, 60_000);
  if (problems.count > before || url === undefined || from === undefined || claims === undefined || forwardClaims === undefined || cacheSize === undefined || cacheTtlMs === undefined || timeoutMs === undefined) return undefined;
  return { url, clientId, clientSecret, from, claims, forwardClaims, cacheSize, cacheTtlMs, timeoutMs };
}

function readApiKeys(m: FileMap, where: string, problems: Problems): ApiKeysSpec | undefined {
  checkKeys(m, ['header', 'query', 'sha256'], where, problems);
  const before = problems.count;
  if (m.header !== undefined && m.query !== undefined) problems.add(where, 'give header or query, not both');
  const header = m.query !== undefined ? null : m.header === undefined ? 'x-api-key' : (readString(m.header, at(where, 'header'), problems)?.toLowerCase() ?? null);
  const query = m.query === undefined ? null : (readString(m.query, at(where, 'query'), problems) ?? null);
  if (m.sha256 === undefined) problems.add(where, 'missing key "sha256" (a list of SHA-256 hex digests of the accepted keys)');
  const sha256 = m.sha256 === undefined ? undefined : readStrings(m.sha256, at(where, 'sha256'), problems);
  sha256?.forEach((h, i) => {
    if (!/^[0-9a-fA-F]{64}$/.test(h)) problems.add(at(at(where, 'sha256'), i), 'expected 64 hex digits (printf %s "$KEY" | sha256sum); never the key itself');
  });
  if (problems.count > before || sha256 === undefined || (header === null && query === null)) return undefined;
  return { header, query, sha256: sha256.map((h) => h.toLowerCase()) };
}

function readBasic(m: FileMap, where: string, problems: Problems, baseDir: string): BasicSpec | undefined {
  checkKeys(m, ['htpasswd', 'realm'], where, problems);
  const before = problems.count;
  if (m.htpasswd === undefined) problems.add(where, 'missing key "htpasswd" (a file of user:bcrypt-hash lines)');
  const realm = m.realm === undefined ? 'sluice' : readString(m.realm, at(where, 'realm'), problems);
  if (realm !== undefined && /["\\\x00-\x1f]/.test(realm)) problems.add(at(where, 'realm'), 'may not contain quotes, backslashes or control characters');
  const p = m.htpasswd === undefined ? undefined : readString(m.htpasswd, at(where, 'htpasswd'), problems);
  const text = p === undefined ? undefined : readFileText(p, at(where, 'htpasswd'), problems, baseDir);
  const users: { user: string; hash: string }[] = [];
  if (text !== undefined) {
    text.split(/\r?\n/).forEach((line, i) => {
      if (line.trim() === '' || line.startsWith('#')) return;
      const colon = line.indexOf(':');
      const hash = colon < 0 ? '' : line.slice(colon + 1).trim();
      if (colon < 1 || !/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) {
        problems.add(at(where, 'htpasswd'), `${JSON.stringify(p)} line ${i + 1}: expected user:<bcrypt hash> (htpasswd -B); other hash kinds are not accepted`);
        return;
      }
      users.push({ user: line.slice(0, colon), hash });
    });
    if (users.length === 0 && problems.count === before) problems.add(at(where, 'htpasswd'), `${JSON.stringify(p)} has no users`);
  }
  if (problems.count > before || realm === undefined) return undefined;
  return { users, realm };
}

function readForward(m: FileMap, where: string, problems: Problems): ForwardAuthSpec | undefined {
  checkKeys(m, ['url', 'copy_headers', 'timeout_ms', 'cache'], where, problems);
  const before = problems.count;
  if (m.url === undefined) problems.add(where, 'missing key "url" (the auth service)');
  const url = m.url === undefined ? undefined : readHttpUrl(m.url, at(where, 'url'), problems);
  const copy = m.copy_headers === undefined ? [] : readStrings(m.copy_headers, at(where, 'copy_headers'), problems);
  copy?.forEach((h, i) => {
    if (!TOKEN.test(h) || ['host', 'content-length', 'transfer-encoding', 'connection'].includes(h.toLowerCase())) problems.add(at(at(where, 'copy_headers'), i), `got ${JSON.stringify(h)}, expected a header name Sluice may set`);
  });
  const timeoutMs = wholeNumber(m, 'timeout_ms', where, problems, 2000, 1, 60_000);
  const cache = m.cache === undefined ? false : readBoolean(m.cache, at(where, 'cache'), problems);
  if (problems.count > before || url === undefined || copy === undefined || timeoutMs === undefined || cache === undefined) return undefined;
  return { url, copyHeaders: copy.map((h) => h.toLowerCase()), timeoutMs, cache };
}

function readCors(node: unknown, where: string, problems: Problems): CorsSpec | undefined {
  const m = readMap(node, where, problems);
  if (m === undefined) return undefined;
  checkKeys(m, ['origins', 'methods', 'headers', 'expose_headers', 'credentials', 'max_age'], where, problems);
  const before = problems.count;
  if (m.origins === undefined) problems.add(where, 'missing key "origins" (a list such as ["https://app.example.com"], or ["*"])');
  const origins = m.origins === undefined ? undefined : readStrings(m.origins, at(where, 'origins'), problems);
  origins?.forEach((o, i) => {
    if (o !== '*' && !/^https?:\/\/[A-Za-z0-9*.-]+(:\d{1,5})?$/.test(o)) problems.add(at(at(where, 'origins'), i), `got ${JSON.stringify(o)}, expected "*" or scheme://host[:port] (no path), "*" standing for labels as in https://*.example.com`);
  });
  const methods = m.methods === undefined ? ['GET', 'HEAD', 'POST'] : readStrings(m.methods, at(where, 'methods'), problems)?.map((x) => x.toUpperCase());
  methods?.forEach((x, i) => {
    if (!TOKEN.test(x)) problems.add(at(at(where, 'methods'), i), `got ${JSON.stringify(x)}, expected a method name`);
  });
  const headers = m.headers === undefined ? [] : readStrings(m.headers, at(where, 'headers'), problems)?.map((x) => x.toLowerCase());
  const expose = m.expose_headers === undefined ? [] : readStrings(m.expose_headers, at(where, 'expose_headers'), problems);
  for (const [k, list] of [['headers', headers], ['expose_headers', expose]] as const) {
    list?.forEach((x, i) => {
      if (x !== '*' && !TOKEN.test(x)) problems.add(at(at(where, k), i), `got ${JSON.stringify(x)}, expected a header name`);
    });
  }
  const credentials = m.credentials === undefined ? false : readBoolean(m.credentials, at(where, 'credentials'), problems);
  if (credentials === true && origins?.includes('*')) problems.add(at(where, 'credentials'), 'true cannot go with origins ["*"] (browsers refuse it): list the origins');
  const maxAge = wholeNumber(m, 'max_age', where, problems, -1, -1, 86_400);
  if (problems.count > before || origins === undefined || methods === undefined || headers === undefined || expose === undefined || credentials === undefined || maxAge === undefined) return undefined;
  return { origins, methods, headers, exposeHeaders: expose, credentials, maxAge };
}

