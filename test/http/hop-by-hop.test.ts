// Hop-by-hop headers (RFC 9110 §7.6.1) stop at Sluice in both directions: Connection and every
// header it names, Keep-Alive, Proxy-Connection, TE (but "trailers"), Trailer, Transfer-Encoding,
// Upgrade on a plain request, Proxy-Authorization, Proxy-Authenticate.

import t from 'tap';
import { ensureBuilt, startSluice } from '../helpers/sluice.js';
import { onRequestHeads, startBackend, startRawBackend, type SeenRequest } from '../helpers/backends.js';
import { rawConnect } from '../helpers/raw-client.js';

t.before(ensureBuilt);

const REQUEST_HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'trailer', 'upgrade', 'proxy-authorization', 'x-secret', 'x-other'];

function names(req: SeenRequest): string[] {
  return [...req.headers.keys()];
}

t.test('client to backend', async (t) => {
  const backend = await startBackend(t);
  const sluice = await startSluice(t, { upstreams: [backend.url] });

  t.test('a chunked request with every hop-by-hop header', async (t) => {
    const client = await rawConnect(t, sluice.port);
    const at = backend.requests.length;
    await client.write(
      'POST /hop HTTP/1.1\r\n' +
        'Host: a.example\r\n' +
        'Connection: keep-alive, X-Secret, x-other\r\n' +
        'X-Secret: s\r\n' +
        'X-Other: o\r\n' +
        'X-Kept: k\r\n' +
        'Keep-Alive: timeout=5, max=100\r\n' +
        'Proxy-Connection: keep-alive\r\n' +
        'TE: trailers, deflate;q=0.5\r\n' +
        'Trailer: X-Checksum\r\n' +
        'Proxy-Authorization: Basic Zm9vOmJhcg==\r\n' +
        'Transfer-Encoding: chunked\r\n' +
        '\r\n' +
        '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
    );
    const res = await client.response();
    const req = await backend.request(at);
    t.equal(res.status, 200, 'answered');
    for (const name of REQUEST_HOP_BY_HOP) t.notOk(req.headers.has(name), `${name} removed`);
    t.same(req.headers.get('x-kept'), ['k'], 'end-to-end header kept');
    t.same(req.headers.get('te'), ['trailers'], 'TE reduced to trailers');
    t.same(req.headers.get('transfer-encoding'), ['chunked'], "Sluice's own framing, once");
    t.notOk(req.headers.has('content-length'), 'no Content-Length beside chunked');
    t.equal(JSON.parse(res.body.toString()).bytes, 11, 'body re-framed intact');
  });

  t.test('TE without trailers is dropped entirely; Content-Length is re-framed', async (t) => {
    const client = await rawConnect(t, sluice.port);
    const at = backend.requests.length;
    await client.write('PUT /te HTTP/1.1\r\nHost: a\r\nTE: gzip\r\nContent-Length: 3\r\n\r\nabc');
    const res = await client.response();
    const req = await backend.request(at);
    t.notOk(req.headers.has('te'), 'TE: gzip dropped');
    t.same(req.headers.get('content-length'), ['3'], 'one Content-Length');
    t.notOk(req.headers.has('transfer-encoding'), 'no Transfer-Encoding');
    t.equal(JSON.parse(res.body.toString()).bytes, 3, 'body intact');
  });

  t.test('Upgrade on a plain request is not forwarded', async (t) => {
    const client = await rawConnect(t, sluice.port);
    const at = backend.requests.length;
    await client.write('GET /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n');
    const res = await client.response();
    const req = await backend.request(at);
    t.equal(res.status, 200, 'answered as a plain request');
    t.notOk(req.headers.has('upgrade'), 'Upgrade dropped');
    t.notOk(req.headers.has('connection'), 'Connection dropped');
    t.notOk(req.headers.has('http2-settings'), 'HTTP2-Settings, named by Connection, dropped');
  });
});

t.test('backend to client', async (t) => {
  const HOP_RESPONSE =
    'Connection: keep-alive, X-Secret\r\n' +
    'X-Secret: s\r\n' +
    'Keep-Alive: timeout=5\r\n' +
    'Proxy-Connection: keep-alive\r\n' +
    'Proxy-Authenticate: Basic realm="x"\r\n' +
    'Trailer: X-Checksum\r\n' +
    'TE: trailers\r\n' +
    'Upgrade: h2c\r\n' +
    'X-Kept: k\r\n';
  const backend = await startRawBackend(t, (socket) => {
    onRequestHeads(socket, (head) => {
      if (head.startsWith('GET /chunked ')) {
        socket.write(`HTTP/1.1 200 OK\r\n${HOP_RESPONSE}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: 1\r\n\r\n`);
      } else if (head.startsWith('GET /length ')) {
        socket.write(`HTTP/1.1 200 OK\r\n${HOP_RESPONSE}Content-Length: 5\r\n\r\nhello`);
      } else {
        // The backend closes this connection: that is its hop, not the client's.
        socket.end('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok');
      }
    });
  });
  const sluice = await startSluice(t, { upstreams: [backend.url] });
  const client = await rawConnect(t, sluice.port);
  const dropped = ['connection', 'x-secret', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'trailer', 'te', 'upgrade'];

  await client.write('GET /chunked HTTP/1.1\r\nHost: a\r\n\r\n');
  const chunked = await client.response();
  t.equal(chunked.status, 200);
  for (const name of dropped) t.same(chunked.all(name), [], `${name} removed (chunked response)`);
  t.same(chunked.all('x-kept'), ['k']);
  t.ok(chunked.all('transfer-encoding').length + chunked.all('content-length').length === 1, 'exactly one framing header');
  t.equal(chunked.body.toString(), 'hello');

  await client.write('GET /length HTTP/1.1\r\nHost: a\r\n\r\n');
  const length = await client.response(chunked.end);
  for (const name of dropped) t.same(length.all(name), [], `${name} removed (length response)`);
  t.same(length.all('content-length'), ['5'], 'one Content-Length');
  t.same(length.all('transfer-encoding'), []);
  t.equal(length.body.toString(), 'hello');

  await client.write('GET /close HTTP/1.1\r\nHost: a\r\n\r\n');
  const closing = await client.response(length.end);
  t.same(closing.all('connection'), [], "the backend's Connection: close is not the client's");
  t.equal(closing.body.toString(), 'ok');
  await client.write('GET /length HTTP/1.1\r\nHost: a\r\n\r\n');
  const after = await client.response(closing.end);
  t.equal(after.status, 200, 'the client connection carries on');
  t.notOk(client.closed);
});
