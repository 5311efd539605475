// TLS termination end to end: the built Sluice with two workers and a TLS listener, real TLS
// clients (node tls/https and Debian's curl) on loopback. SNI picks the certificate, unknown names
// get the default, TLS 1.1 and plain HTTP on the TLS port are refused, X-Forwarded-Proto and HSTS
// follow the listener, and SLUICE_REDIRECT_HTTPS turns the plain listener into a 308 redirector.

import t from 'tap';
import { execFile } from 'node:child_process';
import http from 'node:http';
import { startBackend } from '../helpers/backends.js';
import { freePort, startSluice } from '../helpers/sluice.js';
import { handshake, httpsRequest, makeCerts, rawExchange } from './fixtures/tls.js';

const certs = await makeCerts(t, ['ca'], {
  localhost: { names: ['localhost', '127.0.0.1'] },
  'a.test': { names: ['a.test'], dir: 'sni' },
  '_wildcard.b.test': { names: ['*.b.test'], dir: 'sni' },
});
const ca = certs.cas.ca!;
const caPem = ca.pem.certPem;
const tlsEnv = (tlsPort: number): Record<string, string> => ({
  SLUICE_TLS_LISTEN: `127.0.0.1:${tlsPort}`,
  SLUICE_TLS_CERT: certs.leaves.localhost!.cert,
  SLUICE_TLS_KEY: certs.leaves.localhost!.key,
  SLUICE_TLS_CERTS_DIR: `${certs.dir}/sni`,
  SLUICE_ADMIN_LISTEN: 'off',
  // Backends take traffic at once: these tests are about TLS, not about the first health check.
  SLUICE_HEALTH_CHECK: 'off',
});

const backend = await startBackend(t);
const tlsPort = await freePort();
const sluice = await startSluice(t, {
  upstreams: [backend.url],
  workers: 2,
  env: { ...tlsEnv(tlsPort), SLUICE_HSTS_MAX_AGE: '600' },
});

function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

function plainGet(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<http.IncomingMessage & { body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => (body += s));
      res.on('end', () => resolve(Object.assign(res, { body })));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('curl --cacert gets the default certificate, HSTS, and the backend sees X-Forwarded-Proto https', async (t) => {
  const before = backend.requests.length;
  const r = await curl([
    '--cacert', ca.cert,
    '--resolve', `localhost:${tlsPort}:127.0.0.1`,
    '-D', '-',
    `https://localhost:${tlsPort}/hello?x=1`,
  ]);
  t.equal(r.code, 0, `curl succeeded: ${r.stderr}`);
  t.match(r.stdout, /^HTTP\/1\.1 200/);
  t.match(r.stdout, /^strict-transport-security: max-age=600\r?$/im);
  t.equal(backend.requests.length, before + 1);
  const seen = backend.requests.at(-1)!;
  t.equal(seen.url, '/hello?x=1');
  t.same(seen.headers.get('x-forwarded-proto'), ['https']);
  // By IP: no server name is sent, the default certificate carries 127.0.0.1 in its SAN.
  const byIp = await curl(['--cacert', ca.cert, '-o', '/dev/null', '-w', '%{http_code}', `https://127.0.0.1:${tlsPort}/`]);
  t.equal(byIp.stdout, '200', byIp.stderr);
});

t.test('each SNI name gets its own certificate and its requests are served', async (t) => {
  const a = await handshake(tlsPort, { servername: 'a.test', ca: caPem, rejectUnauthorized: true });
  t.equal(a.subjectCN, 'a.test');
  t.ok(a.authorized);
  const b = await handshake(tlsPort, { servername: 'shop.b.test', ca: caPem, rejectUnauthorized: true });
  t.equal(b.subjectCN, '*.b.test', 'the wildcard certificate covers shop.b.test');
  t.ok(b.authorized);
  // uWS gives every server name its own router: requests on each must still be proxied.
  for (const name of ['a.test', 'shop.b.test']) {
    const res = await httpsRequest(tlsPort, { ca: caPem, servername: name, path: `/via/${name}` });
    t.equal(res.status, 200, `${name} is proxied`);
    t.equal(res.headers['strict-transport-security'], 'max-age=600');
    t.equal(backend.requests.at(-1)!.url, `/via/${name}`);
  }
  const viaCurl = await curl([
    '--cacert', ca.cert,
    '--resolve', `a.test:${tlsPort}:127.0.0.1`,
    '-o', '/dev/null', '-w', '%{http_code}',
    `https://a.test:${tlsPort}/`,
  ]);
  t.equal(viaCurl.stdout, '200', viaCurl.stderr);
});

t.test('an unknown server name, or none, gets the default certificate', async (t) => {
  const unknown = await handshake(tlsPort, { servername: 'unknown.test' });
  t.equal(unknown.subjectCN, 'localhost');
  const none = await handshake(tlsPort, {});
  t.equal(none.subjectCN, 'localhost');
  t.match(none.altNames, /IP Address:127\.0\.0\.1/);
  const res = await httpsRequest(tlsPort, { servername: 'localhost', ca: caPem, path: '/default' });
  t.equal(res.status, 200);
  // A verifying client asking for a name nobody serves fails on the name, as it should.
  await t.rejects(httpsRequest(tlsPort, { servername: 'unknown.test', ca: caPem }), /altnames|does not match|Hostname/i);
});

t.test('TLS 1.1 is refused; TLS 1.2 and 1.3 work; no ALPN is negotiated', async (t) => {
  // The client must be willing to speak TLS 1.1 (OpenSSL 3 forbids it at its default security
  // level), so the refusal seen here is the server's protocol_version alert.
  const old = handshake(tlsPort, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
  await t.rejects(old, { code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
  const v12 = await handshake(tlsPort, { maxVersion: 'TLSv1.2' });
  t.equal(v12.protocol, 'TLSv1.2');
  const v13 = await handshake(tlsPort, { ALPNProtocols: ['h2', 'http/1.1'] });
  t.equal(v13.protocol, 'TLSv1.3');
  t.equal(v13.alpn, false, 'uWS negotiates no ALPN: clients fall back to HTTP/1.1');
});

t.test('plain HTTP sent to the TLS port is refused cleanly', async (t) => {
  const before = backend.requests.length;
  const r = await rawExchange(tlsPort, 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
  t.ok(r.closed, 'the connection is closed');
  t.notMatch(r.received.toString('latin1'), /HTTP\/1\.1 \d{3}/, 'no HTTP response');
  t.equal(backend.requests.length, before, 'nothing reached the backend');
  const after = await httpsRequest(tlsPort, { ca: caPem, path: '/still-serving' });
  t.equal(after.status, 200, 'TLS clients are still served');
});

t.test('the plain listener still proxies, with X-Forwarded-Proto http and no HSTS', async (t) => {
  const res = await plainGet(sluice.port, '/plain');
  t.equal(res.statusCode, 200);
  t.equal(res.headers['strict-transport-security'], undefined);
  t.same(backend.requests.at(-1)!.headers.get('x-forwarded-proto'), ['http']);
});

t.test('SLUICE_REDIRECT_HTTPS=1: the plain listener answers 308 to the same host and path', async (t) => {
  const redirectBackend = await startBackend(t);
  const port = await freePort();
  const s = await startSluice(t, { upstreams: [redirectBackend.url], env: { ...tlsEnv(port), SLUICE_REDIRECT_HTTPS: '1' } });
  const get = await plainGet(s.port, '/a/b%20c?x=1&y=2', { host: 'shop.example:8080' });
  t.equal(get.statusCode, 308);
  t.equal(get.headers.location, `https://shop.example:${port}/a/b%20c?x=1&y=2`);
  const post = await plainGet(s.port, '/form', { host: 'shop.example' }, 'POST');
  t.equal(post.statusCode, 308, 'POST too (308 keeps the method)');
  t.equal(post.headers.location, `https://shop.example:${port}/form`);
  const v6 = await plainGet(s.port, '/', { host: '[::1]:80' });
  t.equal(v6.headers.location, `https://[::1]:${port}/`);
  const bad = await plainGet(s.port, '/', { host: 'bad host' });
  t.equal(bad.statusCode, 400, 'a Host that is no host name gets 400, not a redirect');
  t.equal(redirectBackend.requests.length, 0, 'nothing was proxied from the plain listener');
  const tls = await httpsRequest(port, { ca: caPem, path: '/over-tls' });
  t.equal(tls.status, 200);
  t.equal(tls.headers['strict-transport-security'], undefined, 'no HSTS unless SLUICE_HSTS_MAX_AGE is set');
  t.equal(redirectBackend.requests.length, 1);
});

t.test('SLUICE_LISTEN=off with a TLS listener: HTTPS only, the plain port is not listened on', async (t) => {
  const port = await freePort();
  const only = await startSluice(t, { upstreams: [backend.url], env: { ...tlsEnv(port), SLUICE_LISTEN: 'off' } });
  t.match(only.logs().find((l) => l.msg === 'sluice is listening'), { listen: 'off', tls: `127.0.0.1:${port}`, workers: 1 });
  const r = await httpsRequest(port, { ca: caPem, servername: 'localhost', path: '/tls-only' });
  t.equal(r.status, 200);
  t.equal(backend.requests.at(-1)!.url, '/tls-only');
  const plain = await new Promise<string>((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: only.port, path: '/' }, (res) => resolve(`answered ${res.statusCode}`));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
  t.equal(plain, 'ECONNREFUSED', 'no plain listener');
});
