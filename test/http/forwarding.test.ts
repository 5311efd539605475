// What reaches the backend: the request line byte for byte (method, path, query), Host kept, and
// the X-Forwarded-For / -Proto / -Host, Via and X-Request-Id headers Sluice adds or extends, with
// X-Forwarded-Proto and -Host kept only from a peer listed in SLUICE_TRUSTED_PROXIES.

import t from 'tap';
import net from 'node:net';
import { ensureBuilt, startSluice, type Sluice, type Teardown } from '../helpers/sluice.js';
import { startBackend, type HttpBackend, type SeenRequest } from '../helpers/backends.js';
import { rawConnect } from '../helpers/raw-client.js';

/**
 * The trusted proxy in front of Sluice: another loopback address (Linux routes all of 127/8 to
 * lo), so the same test can connect both as the proxy and as an ordinary client (127.0.0.1).
 */
const PROXY = '127.0.0.2';

let backend: HttpBackend;
let sluice: Sluice;

t.before(async () => {
  await ensureBuilt();
  backend = await startBackend(t);
  sluice = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_TRUSTED_PROXIES: `192.0.2.10,${PROXY}` } });
});

/**
 * Send `head` (+ body) on a fresh raw connection (from `from`, default 127.0.0.1); resolve with
 * what the backend saw and the response.
 */
async function send(tt: Teardown, head: string, body = '', from?: string) {
  const seen = backend.request(backend.requests.length);
  const client = await rawConnect(tt, sluice.port, from);
  await client.write(head + body);
  const [req, res] = await Promise.all([seen, client.response()]);
  client.destroy();
  return { req, res };
}

function one(req: SeenRequest, name: string): string | undefined {
  const values = req.headers.get(name);
  if (values && values.length > 1) throw new Error(`${name} arrived ${values.length} times: ${JSON.stringify(values)}`);
  return values?.[0];
}

t.test('the request target reaches the backend byte for byte', async (t) => {
  const targets = ['/a%2Fb?x=1&y=%20', '/', '/x/../y/./z', '/a//b;p=1?q=a+b&q=%2B&q=%2b', '/%7Euser/%E2%82%AC?utf8=%E2%9C%93', '/s?a=1&a=2&=&b'];
  for (const target of targets) {
    const { req, res } = await send(t, `GET ${target} HTTP/1.1\r\nHost: test.local\r\n\r\n`);
    t.equal(res.status, 200);
    t.equal(req.url, target, `${target} unchanged`);
  }
});

t.test('methods pass through with their exact token', async (t) => {
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE']) {
    const body = method === 'GET' ? '' : 'hello';
    const length = body ? `Content-Length: ${body.length}\r\n` : '';
    const { req, res } = await send(t, `${method} /m?q=${method} HTTP/1.1\r\nHost: test.local\r\n${length}\r\n`, body);
    t.equal(res.status, 200);
    t.equal(req.method, method);
    t.equal(req.url, `/m?q=${method}`);
    t.equal(JSON.parse(res.body.toString()).bytes, body.length, `${method} body forwarded`);
  }
});

t.test('methods uWS does not route are refused, never forwarded altered', async (t) => {
  // Methods are case-sensitive (RFC 9110 §9.1): `patch` is not PATCH. This uWS build closes the
  // connection for a lowercase token and for extension methods (PURGE, PROPFIND, REPORT...): its
  // `any` route covers only the standard methods. Whatever it does, nothing altered may arrive.
  for (const method of ['patch', 'get', 'PURGE', 'PROPFIND']) {
    const before = backend.requests.length;
    const client = await rawConnect(t, sluice.port);
    await client.write(`${method} /m HTTP/1.1\r\nHost: test.local\r\nContent-Length: 2\r\n\r\nhi`);
    const answered = await client.waitFor((text) => text.includes('\r\n\r\n'));
    // Whatever Sluice made of it is settled once it answered or closed; a request sent after
    // that, through the same worker and pool, marks the point where the backend has seen it.
    const { req: marker } = await send(t, `GET /after-${method} HTTP/1.1\r\nHost: test.local\r\n\r\n`);
    t.equal(marker.url, `/after-${method}`);
    const seen = backend.requests.slice(before, -1).map((r) => r.method);
    if (seen.length > 0) t.same(seen, [method], `${method} forwarded with its own token`);
    else t.ok(answered || client.closed, `${method} refused: an answer or a closed connection`);
    client.destroy();
  }
});

t.test('Host is kept; X-Forwarded-*, Via and a request id are added', async (t) => {
  const { req } = await send(t, 'GET /h HTTP/1.1\r\nHost: shop.example:8443\r\nAccept: */*\r\n\r\n');
  t.equal(one(req, 'host'), 'shop.example:8443');
  t.equal(one(req, 'x-forwarded-for'), '127.0.0.1');
  t.equal(one(req, 'x-forwarded-proto'), 'http');
  t.equal(one(req, 'x-forwarded-host'), 'shop.example:8443');
  t.equal(one(req, 'via'), '1.1 sluice');
  t.equal(one(req, 'accept'), '*/*', 'other headers pass');
  const id1 = one(req, 'x-request-id');
  t.match(id1, /^\S{6,}$/, 'a request id was generated');
  const { req: req2 } = await send(t, 'GET /h HTTP/1.1\r\nHost: shop.example\r\n\r\n');
  t.not(one(req2, 'x-request-id'), id1, 'each request gets its own id');
});

t.test('X-Forwarded-For and Via are appended to, not replaced', async (t) => {
  const { req } = await send(t, 'GET /x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.7\r\nVia: 1.0 fred\r\n\r\n');
  t.equal(one(req, 'x-forwarded-for'), '203.0.113.7, 127.0.0.1');
  t.equal(one(req, 'via'), '1.0 fred, 1.1 sluice');
  const { req: two } = await send(t, 'GET /x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 198.51.100.1, 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\n\r\n');
  t.equal(one(two, 'x-forwarded-for'), '198.51.100.1, 10.0.0.1, 10.0.0.2, 127.0.0.1', 'several headers become one list');
});

t.test('an untrusted client cannot set X-Forwarded-Proto or -Host', async (t) => {
  const { req } = await send(t, 'GET /x HTTP/1.1\r\nHost: real.example\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n\r\n');
  t.equal(one(req, 'x-forwarded-proto'), 'http');
  t.equal(one(req, 'x-forwarded-host'), 'real.example');
});

t.test('a peer in SLUICE_TRUSTED_PROXIES keeps its X-Forwarded-Proto and -Host; X-Forwarded-For is extended', async (t) => {
  const { req, res } = await send(
    t,
    'GET /x HTTP/1.1\r\nHost: internal.example\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: shop.example\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n',
    '',
    PROXY,
  );
  t.equal(res.status, 200);
  t.equal(one(req, 'x-forwarded-for'), `203.0.113.9, ${PROXY}`, 'the proxy is the peer Sluice saw');
  t.equal(one(req, 'x-forwarded-proto'), 'https', "the proxy's scheme is kept");
  t.equal(one(req, 'x-forwarded-host'), 'shop.example', "the proxy's host is kept");
  t.equal(one(req, 'host'), 'internal.example');

  // Trusted, but saying nothing: Sluice's own values.
  const { req: plain } = await send(t, 'GET /y HTTP/1.1\r\nHost: internal.example\r\n\r\n', '', PROXY);
  t.equal(one(plain, 'x-forwarded-proto'), 'http');
  t.equal(one(plain, 'x-forwarded-host'), 'internal.example');

  // The same headers from 127.0.0.1, which is not in the list (the list is exact addresses).
  const { req: other } = await send(
    t,
    'GET /z HTTP/1.1\r\nHost: internal.example\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: shop.example\r\n\r\n',
  );
  t.equal(one(other, 'x-forwarded-proto'), 'http', 'an untrusted peer cannot claim https');
  t.equal(one(other, 'x-forwarded-host'), 'internal.example', 'nor another host');
});

t.test('a client X-Request-Id is passed through unchanged', async (t) => {
  const { req } = await send(t, 'GET /id HTTP/1.1\r\nHost: a\r\nX-Request-Id: abc-123_XYZ\r\n\r\n');
  t.equal(one(req, 'x-request-id'), 'abc-123_XYZ');
});

const skipV6 = (await ipv6Available()) ? false : 'no IPv6 on this host';

t.test('a dual-stack listener reports an IPv4 client as 127.0.0.1, not ::ffff:127.0.0.1', { skip: skipV6 }, async (t) => {
  const dual = await startSluice(t, { upstreams: [backend.url], listenHost: '::' });
  const seen = backend.request(backend.requests.length);
  const client = await rawConnect(t, dual.port);
  await client.write('GET /v6 HTTP/1.1\r\nHost: a\r\n\r\n');
  const req = await seen;
  await client.response();
  t.equal(one(req, 'x-forwarded-for'), '127.0.0.1');
});

function ipv6Available(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(0, '::', () => s.close(() => resolve(true)));
  });
}
