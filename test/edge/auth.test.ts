// Each kind of auth through the real proxy, with real credentials made in the test: JWTs signed
// with jose (RS256 from a JWKS server that rotates its key, ES256/PS256/EdDSA from a JWKS file,
// HS256 from a secret), an RFC 7662 introspection server, SHA-256 API keys, a bcrypt htpasswd
// file, and a forward-auth service. The backend echoes what it received, so the tests see which
// headers were forwarded, added and removed.

import t from 'tap';
import http from 'node:http';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type JWK, type CryptoKey } from 'jose';
import bcrypt from 'bcryptjs';
import { ensureBuilt, type Sluice } from '../helpers/sluice.js';
import { startBackend } from '../helpers/backends.js';
import { echoJson, request, startWithConfig, until } from './helpers.js';

/** A loopback HTTP server closed at teardown. */
async function server(t: Tap.Test, handler: http.RequestListener): Promise<string> {
  const s = http.createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => s.close(() => r())));
  s.unref();
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

declare namespace Tap {
  type Test = { teardown(fn: () => unknown): void };
}

const now = () => Math.floor(Date.now() / 1000);
const SECRET = 'a-test-secret-that-is-32-bytes-long!!';

async function sign(key: CryptoKey | Uint8Array, alg: string, kid: string | undefined, claims: Record<string, unknown>, opts: { exp?: number; nbf?: number; aud?: string } = {}): Promise<string> {
  const jwt = new SignJWT(claims)
    .setProtectedHeader(kid === undefined ? { alg } : { alg, kid })
    .setIssuer('https://id.test')
    .setAudience(opts.aud ?? 'api')
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? now() + 600);
  if (opts.nbf !== undefined) jwt.setNotBefore(opts.nbf);
  return jwt.sign(key);
}

async function jwk(alg: string, kid: string): Promise<{ priv: CryptoKey; pub: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
  return { priv: privateKey, pub: { ...(await exportJWK(publicKey)), kid, alg } };
}

let sluice: Sluice;
let introspections = 0;
let jwksFetches = 0;
let jwks: JWK[] = [];
let authCalls = 0;
let rs1: { priv: CryptoKey; pub: JWK };
let rs2: { priv: CryptoKey; pub: JWK };
let es: { priv: CryptoKey; pub: JWK };
let ps: { priv: CryptoKey; pub: JWK };
let ed: { priv: CryptoKey; pub: JWK };
const API_KEY = 'k-0123456789';

t.before(async () => {
  await ensureBuilt();
  [rs1, rs2, es, ps, ed] = await Promise.all([jwk('RS256', 'rs-1'), jwk('RS256', 'rs-2'), jwk('ES256', 'es-1'), jwk('PS256', 'ps-1'), jwk('EdDSA', 'ed-1')]);
  jwks = [rs1.pub];
  const backend = await startBackend(t, echoJson);
  const jwksUrl = await server(t, (_req, res) => {
    jwksFetches++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: jwks }));
  });
  const introspect = await server(t, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      introspections++;
      const token = new URLSearchParams(body).get('token');
      const authOk = req.headers.authorization === 'Basic ' + Buffer.from('sluice:s3cret').toString('base64');
      res.writeHead(200, { 'content-type': 'application/json' });
      if (!authOk) return res.end('{"active":false}');
      if (token === 'opaque-good') return res.end(JSON.stringify({ active: true, sub: 'carol', scope: 'read write', exp: now() + 600 }));
      if (token === 'opaque-readonly') return res.end(JSON.stringify({ active: true, sub: 'dave', scope: 'read', exp: now() + 600 }));
      res.end('{"active":false}');
    });
  });
  const authService = await server(t, (req, res) => {
    authCalls++;
    if (req.headers['x-token'] === 'cached') {
      res.writeHead(200, { 'x-auth-user': 'cached-user', 'cache-control': 'max-age=60' });
      return res.end();
    }
    if (req.headers['x-token'] === 'letmein' && String(req.headers['x-forwarded-uri']).startsWith('/fwd/')) {
      res.writeHead(200, { 'x-auth-user': 'alice', 'x-other': 'not copied' });
      return res.end();
    }
    res.writeHead(401, { 'www-authenticate': 'Custom realm="fwd"', 'content-type': 'text/plain' });
    res.end('nope');
  });
  const htpasswd = `# users\nops:${bcrypt.hashSync('open sesame', 4)}\n`;
  const fileJwks = JSON.stringify({ keys: [es.pub, ps.pub, ed.pub] });
  sluice = await startWithConfig(
    t,
    `pools: { api: { upstreams: ["${backend.url}"] } }
routes:
  - match: { path_prefix: /jwt/ }
    pool: api
    auth:
      jwt:
        jwks_url: "${jwksUrl}/jwks"
        jwks_cooldown_ms: 0
        issuer: "https://id.test"
        audience: api
        leeway_s: 30
        from: [bearer, "cookie:session"]
        required_claims: [sub]
        forward_claims: { sub: x-user, roles: x-roles }
        strip_token: true
  - match: { path_prefix: /admin/ }
    pool: api
    auth: { jwt: { jwks_url: "${jwksUrl}/jwks", issuer: "https://id.test", audience: api, claims: { roles: admin } } }
  - match: { path_prefix: /file/ }
    pool: api
    auth: { jwt: { jwks_file: keys.json, algorithms: [ES256, PS256, EdDSA], audience: api } }
  - match: { path_prefix: /hs/ }
    pool: api
    auth: { jwt: { secret: "${SECRET}", from: ["query:access_token"] } }
  - match: { path_prefix: /opaque/ }
    pool: api
    auth: { introspection: { url: "${introspect}/introspect", client_id: sluice, client_secret: s3cret, claims: { scope: write }, forward_claims: { sub: x-user } } }
  - match: { path_prefix: /partners/ }
    pool: api
    auth: { api_keys: { header: x-api-key, sha256: ["${createHash('sha256').update(API_KEY).digest('hex')}"] } }
  - match: { path_prefix: /ops/ }
    pool: api
    auth: { basic: { htpasswd: ops.htpasswd, realm: ops } }
  - match: { path_prefix: /fwd/ }
    pool: api
    auth: { forward: { url: "${authService}/check", copy_headers: [x-auth-user] } }
  - match: { path_prefix: /fwdc/ }
    pool: api
    auth: { forward: { url: "${authService}/check", copy_headers: [x-auth-user], cache: true } }
  - match: { path_prefix: /per-user/ }
    pool: api
    auth: { jwt: { jwks_url: "${jwksUrl}/jwks", audience: api } }
    rate_limit: [{ key: "jwt:sub", rate: 1/m, burst: 2 }]
`,
    { files: { 'keys.json': fileJwks, 'ops.htpasswd': htpasswd } },
  );
});

t.test('JWT from a JWKS URL: claims forwarded, token stripped, spoofed headers dropped', async (t) => {
  const token = await sign(rs1.priv, 'RS256', 'rs-1', { sub: 'alice', roles: ['dev', 'ops'] });
  const r = await request(sluice.port, 'GET', '/jwt/a', { authorization: `Bearer ${token}`, 'x-user': 'mallory' });
  t.equal(r.status, 200);
  t.equal(r.seen!.headers['x-user'], 'alice', 'the claim, not what the client sent');
  t.equal(r.seen!.headers['x-roles'], 'dev,ops');
  t.equal(r.seen!.headers.authorization, undefined, 'strip_token');
  const again = await request(sluice.port, 'GET', '/jwt/b', { cookie: `theme=dark; session=${token}` });
  t.equal(again.status, 200, 'from the cookie, and from the verified-token cache');
  t.equal(again.seen!.headers['x-user'], 'alice');
  const post = await request(sluice.port, 'POST', '/jwt/body', { authorization: `Bearer ${await sign(rs1.priv, 'RS256', 'rs-1', { sub: 'bob' })}`, 'content-type': 'text/plain' }, 'x'.repeat(100_000));
  t.equal(post.status, 200, 'a body waits while the token is verified');
  t.equal((JSON.parse(post.body) as { body: string }).body.length, 100_000, 'and arrives whole');
});

t.test('JWT refusals: 401 with WWW-Authenticate per RFC 6750, 403 for a missing claim', async (t) => {
  const none = await request(sluice.port, 'GET', '/jwt/a');
  t.equal(none.status, 401);
  t.equal(none.headers['www-authenticate'], 'Bearer realm="sluice"', 'no token: no error code');
  const expired = await request(sluice.port, 'GET', '/jwt/a', { authorization: `Bearer ${await sign(rs1.priv, 'RS256', 'rs-1', { sub: 'a' }, { exp: now() - 120 })}` });
  t.equal(expired.status, 401);
  t.equal(expired.headers['www-authenticate'], 'Bearer error="invalid_token", error_description="ERR_JWT_EXPIRED"');
  const leeway = await request(sluice.port, 'GET', '/jwt/a', { authorization: `Bearer ${await sign(rs1.priv, 'RS256', 'rs-1', { sub: 'a' }, { exp: now() - 5 })}` });
  t.equal(leeway.status, 200, 'expired 5 s ago is inside the 30 s leeway');
  const early = await request(sluice.port, 'GET', '/jwt/a', { authorization: `Bearer ${await sign(rs1.priv, 'RS256', 'rs-1', { sub: 'a' }, { nbf: now() + 300 })}` });
  t.equal(early.status, 401, 'nbf in the future');
  const aud = await request(sluice.port, 'GET', '/jwt/a', { authorization: `Bearer ${await sign(rs1.priv, 'RS256', 'rs-1', { sub: 'a' }, { aud: 'other' })}` });
  t.match(aud.headers['www-authenticate'], /error="invalid_token"/);
  const forged = await request(sluice.port, 'GET', '/jwt/a', { authorization: `Bearer ${await sign(rs2.priv, 'RS256', 'rs-1', { sub: 'a' })}` });
  t.equal(forged.status, 401, 'signed by another key under a known kid');
  const noSub = await request(sluice.port, 'GET', '/jwt/a', { authorization: `Bearer ${await sign(rs1.priv, 'RS256', 'rs-1', { name: 'x' })}` });
  t.equal(noSub.status, 403);
  t.equal(noSub.headers['www-authenticate'], 'Bearer error="insufficient_scope"');
  const notAdmin = await request(sluice.port, 'GET', '/admin/x', { authorization: `Bearer ${await sign(rs1.priv, 'RS256', 'rs-1', { sub: 'a', roles: ['dev'] })}` });
  t.equal(notAdmin.status, 403, 'claims: { roles: admin } against a list without it');
  const admin = await request(sluice.port, 'GET', '/admin/x', { authorization: `Bearer ${await sign(rs1.priv, 'RS256', 'rs-1', { sub: 'a', roles: ['dev', 'admin'] })}` });
  t.equal(admin.status, 200);
});

t.test('JWKS rotation: an unknown kid refetches the key set', async (t) => {
  const before = jwksFetches;
  jwks = [rs1.pub, rs2.pub];
  const token = await sign(rs2.priv, 'RS256', 'rs-2', { sub: 'rotated' });
  const r = await request(sluice.port, 'GET', '/jwt/rot', { authorization: `Bearer ${token}` });
  t.equal(r.status, 200);
  t.equal(r.seen!.headers['x-user'], 'rotated');
  t.ok(jwksFetches > before, 'fetched again for the new kid');
  jwks = [rs2.pub];
});

t.test('JWT from a JWKS file (ES256, PS256, EdDSA) and from a secret (HS256, token in the query)', async (t) => {
  for (const [k, alg] of [[es, 'ES256'], [ps, 'PS256'], [ed, 'EdDSA']] as const) {
    const token = await sign(k.priv, alg, k.pub.kid, { sub: alg });
    t.equal((await request(sluice.port, 'GET', '/file/x', { authorization: `Bearer ${token}` })).status, 200, alg);
  }
  const rs = await sign(rs1.priv, 'RS256', 'rs-1', { sub: 'x' });
  t.equal((await request(sluice.port, 'GET', '/file/x', { authorization: `Bearer ${rs}` })).status, 401, 'an algorithm the route does not allow');
  const hs = await sign(new TextEncoder().encode(SECRET), 'HS256', undefined, { sub: 'h' });
  t.equal((await request(sluice.port, 'GET', `/hs/x?access_token=${hs}`)).status, 200);
  const wrong = await sign(new TextEncoder().encode(SECRET + 'x'), 'HS256', undefined, { sub: 'h' });
  t.equal((await request(sluice.port, 'GET', `/hs/x?access_token=${wrong}`)).status, 401);
});

t.test('introspection: active passes with claims, inactive 401, scope missing 403, answers cached', async (t) => {
  const good = await request(sluice.port, 'GET', '/opaque/x', { authorization: 'Bearer opaque-good' });
  t.equal(good.status, 200);
  t.equal(good.seen!.headers['x-user'], 'carol');
  const calls = introspections;
  t.equal((await request(sluice.port, 'GET', '/opaque/y', { authorization: 'Bearer opaque-good' })).status, 200);
  t.equal(introspections, calls, 'the second request used the cache');
  const ro = await request(sluice.port, 'GET', '/opaque/x', { authorization: 'Bearer opaque-readonly' });
  t.equal(ro.status, 403);
  const bad = await request(sluice.port, 'GET', '/opaque/x', { authorization: 'Bearer nope' });
  t.equal(bad.status, 401);
  t.match(bad.headers['www-authenticate'], /invalid_token/);
});

t.test('API keys: by SHA-256 only', async (t) => {
  t.equal((await request(sluice.port, 'GET', '/partners/x', { 'x-api-key': API_KEY })).status, 200);
  t.equal((await request(sluice.port, 'GET', '/partners/x', { 'x-api-key': API_KEY + '!' })).status, 401);
  t.equal((await request(sluice.port, 'GET', '/partners/x')).status, 401);
});

t.test('Basic auth from a bcrypt htpasswd file', async (t) => {
  const basic = (u: string, p: string) => ({ authorization: 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64') });
  const ok = await request(sluice.port, 'GET', '/ops/x', basic('ops', 'open sesame'));
  t.equal(ok.status, 200);
  t.equal((await request(sluice.port, 'GET', '/ops/x', basic('ops', 'open sesame'))).status, 200, 'remembered');
  const wrong = await request(sluice.port, 'GET', '/ops/x', basic('ops', 'guess'));
  t.equal(wrong.status, 401);
  t.equal(wrong.headers['www-authenticate'], 'Basic realm="ops", charset="UTF-8"');
  t.equal((await request(sluice.port, 'GET', '/ops/x', basic('root', 'open sesame'))).status, 401);
  t.equal((await request(sluice.port, 'GET', '/ops/x')).status, 401);
});

t.test('forward auth: 2xx copies the listed headers; anything else goes back as it came', async (t) => {
  const ok = await request(sluice.port, 'POST', '/fwd/x?y=1', { 'x-token': 'letmein', 'x-auth-user': 'spoofed' }, 'payload');
  t.equal(ok.status, 200);
  t.equal(ok.seen!.headers['x-auth-user'], 'alice', 'copied from the auth answer, the client value dropped');
  t.equal(ok.seen!.headers['x-other'], undefined, 'only the listed headers');
  t.equal((JSON.parse(ok.body) as { body: string }).body, 'payload', 'the body waited and arrived');
  const no = await request(sluice.port, 'GET', '/fwd/x', { 'x-token': 'wrong' });
  t.equal(no.status, 401);
  t.equal(no.headers['www-authenticate'], 'Custom realm="fwd"');
  t.equal(no.body, 'nope');
});

t.test('forward auth cache: a 2xx with max-age is reused for the same credentials', async (t) => {
  const before = authCalls;
  for (let i = 0; i < 3; i++) {
    const r = await request(sluice.port, 'GET', '/fwdc/x', { 'x-token': 'cached', authorization: 'Bearer same' });
    t.equal(r.seen!.headers['x-auth-user'], 'cached-user');
  }
  t.equal(authCalls, before + 1, 'asked once');
  await request(sluice.port, 'GET', '/fwdc/x', { 'x-token': 'cached', authorization: 'Bearer other' });
  t.equal(authCalls, before + 2, 'other credentials ask again');
});

t.test('rate limit keyed by a verified claim: one bucket per user, not per token', async (t) => {
  const alice1 = await sign(rs2.priv, 'RS256', 'rs-2', { sub: 'alice', n: 1 });
  const alice2 = await sign(rs2.priv, 'RS256', 'rs-2', { sub: 'alice', n: 2 });
  const bob = await sign(rs2.priv, 'RS256', 'rs-2', { sub: 'bob' });
  const get = (tok: string) => request(sluice.port, 'GET', '/per-user/x', { authorization: `Bearer ${tok}` });
  t.equal((await get(alice1)).status, 200);
  t.equal((await get(alice2)).status, 200, 'another token of the same user');
  const third = await get(alice1);
  t.equal(third.status, 429, 'the user\'s burst of 2 is spent, whichever token');
  t.equal(third.headers['ratelimit-policy'], '"jwt";q=2;w=120');
  t.equal((await get(bob)).status, 200, 'another user');
  t.equal((await request(sluice.port, 'GET', '/per-user/x')).status, 401, 'no token: refused by auth, not counted');
});

t.test('a drain waits for a request whose auth check is still running', async (t) => {
  const backend = await startBackend(t, echoJson);
  let release: (() => void) | null = null;
  const asked = new Promise<void>((resolveAsked) => {
    void server(t, (_req, res) => {
      release = () => {
        res.writeHead(200, { 'x-auth-user': 'late' });
        res.end();
      };
      resolveAsked();
    }).then((url) => (authUrl = url));
  });
  let authUrl = '';
  while (authUrl === '') await new Promise((r) => setImmediate(r));
  const s = await startWithConfig(t, `pools: { api: { upstreams: ["${backend.url}"] } }
routes:
  - { match: {}, pool: api, auth: { forward: { url: "${authUrl}/check", copy_headers: [x-auth-user], timeout_ms: 10000 } } }
`);
  const reply = request(s.port, 'GET', '/x');
  await asked;
  const stopped = s.stop();
  // The worker is draining once its listening socket is closed: new connections are refused.
  const net = await import('node:net');
  await until(
    () =>
      new Promise<boolean>((resolve) => {
        const c = net.connect(s.port, '127.0.0.1');
        c.once('connect', () => {
          c.destroy();
          resolve(false);
        });
        c.once('error', () => resolve(true));
      }),
    'the listener is closed',
  );
  release!();
  const r = await reply;
  t.equal(r.status, 200, 'answered after the auth service, not cut by the drain');
  t.equal(r.seen!.headers['x-auth-user'], 'late');
  t.equal(await stopped, 0);
});

t.test('JWKS URLs are fetched on the control plane: once per process, not once per worker', async (t) => {
  let fetches = 0;
  let keys: JWK[] = [rs1.pub];
  const url = await server(t, (_req, res) => {
    fetches++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys }));
  });
  const backend = await startBackend(t, echoJson);
  const s = await startWithConfig(
    t,
    `pools: { api: { upstreams: ["${backend.url}"] } }
routes:
  - { match: { path_prefix: /a/ }, pool: api, auth: { jwt: { jwks_url: "${url}/jwks", jwks_cooldown_ms: 0 } } }
  - { match: { path_prefix: /b/ }, pool: api, auth: { jwt: { jwks_url: "${url}/jwks", jwks_cooldown_ms: 0 } } }
`,
    { workers: 4 },
  );
  // Many connections, so every worker verifies tokens (distinct tokens: no cache hits).
  const tokens = await Promise.all(Array.from({ length: 40 }, (_, i) => sign(rs1.priv, 'RS256', 'rs-1', { sub: `u${i}` })));
  const agentMany = new http.Agent({ keepAlive: false });
  const statuses = await Promise.all(
    tokens.map(
      (tok, i) =>
        new Promise<number>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port: s.port, path: i % 2 === 0 ? '/a/x' : '/b/x', headers: { authorization: `Bearer ${tok}` }, agent: agentMany }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode!));
          });
          req.on('error', reject);
          req.end();
        }),
    ),
  );
  t.ok(statuses.every((x) => x === 200), 'all verified');
  t.equal(fetches, 1, 'one fetch for 4 workers and 2 routes');
  keys = [rs1.pub, rs2.pub];
  const rotated = await sign(rs2.priv, 'RS256', 'rs-2', { sub: 'new' });
  t.equal((await request(s.port, 'GET', '/a/x', { authorization: `Bearer ${rotated}` })).status, 200, 'an unknown kid refreshes the set');
  t.equal(fetches, 2);
});
