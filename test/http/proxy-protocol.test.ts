// PROXY protocol on the HTTP listener (src/http/proxy-header.ts): with SLUICE_ACCEPT_PROXY_PROTOCOL
// the client address in X-Forwarded-For is the v2 header's source, and a connection without a
// header is refused; without it, a v2 header is refused as not HTTP and its address never used.

import net from 'node:net';
import t from 'tap';
import { encodeV2 } from '../../src/l4/proxy-protocol.js';
import { startBackend } from '../helpers/backends.js';
import { ensureBuilt, startSluice } from '../helpers/sluice.js';

await ensureBuilt();

/** One request on a fresh connection, optionally after a PROXY header; the raw response text. */
function request(port: number, preface: Buffer | null, path = '/'): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      const head = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      s.write(preface === null ? head : Buffer.concat([preface, head]));
    });
    let text = '';
    s.setEncoding('latin1').on('data', (d: string) => (text += d));
    s.on('close', () => resolve(text));
    s.on('error', reject);
  });
}

const FRONT = encodeV2({ family: 'tcp4', sourceAddress: '203.0.113.9', sourcePort: 51000, destinationAddress: '127.0.0.1', destinationPort: 80 });
const FRONT6 = encodeV2({ family: 'tcp6', sourceAddress: '2001:db8::7', sourcePort: 51000, destinationAddress: '::1', destinationPort: 80 });

t.test('SLUICE_ACCEPT_PROXY_PROTOCOL=1: X-Forwarded-For is the header source; no header, 400', async (t) => {
  const backend = await startBackend(t);
  const sluice = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_ACCEPT_PROXY_PROTOCOL: '1' } });
  const seen = backend.requests.length;
  const ok = await request(sluice.port, FRONT);
  t.match(ok, /^HTTP\/1\.1 200 /);
  const req = await backend.request(seen);
  t.same(req.headers.get('x-forwarded-for'), ['203.0.113.9'], 'the front balancer\'s client, not 127.0.0.1');
  const v6 = await request(sluice.port, FRONT6);
  t.match(v6, /^HTTP\/1\.1 200 /);
  t.same((await backend.request(seen + 1)).headers.get('x-forwarded-for'), ['2001:db8::7']);

  const bare = await request(sluice.port, null);
  t.match(bare, /^HTTP\/1\.1 400 /);
  t.match(bare, /PROXY protocol v2 header required/);
  t.equal(backend.requests.length, seen + 2, 'the request without a header never reached the backend');
});

t.test('off (the default, or enabled for the TLS listener only): a PROXY header is not HTTP (400), and its address is never used', async (t) => {
  const backend = await startBackend(t);
  const sluice = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_ACCEPT_PROXY_PROTOCOL: 'tls' } });
  const refused = await request(sluice.port, FRONT);
  t.match(refused, /^HTTP\/1\.1 400 /);
  t.match(refused, /PROXY protocol header not accepted here/);
  t.equal(backend.requests.length, 0);
  const plain = await request(sluice.port, null);
  t.match(plain, /^HTTP\/1\.1 200 /);
  t.same((await backend.request(0)).headers.get('x-forwarded-for'), ['127.0.0.1'], 'the socket address');
});
