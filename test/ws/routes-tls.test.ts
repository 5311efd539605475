// WebSockets and the rest of Sluice: routes from a config file (websocket: false answers 403, a
// rewrite and header edits apply to the handshake, routes Sluice answers itself answer it as plain
// HTTP), wss:// on the TLS listener, and wss:// to an https:// pool verified against a private CA.

import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startSluice } from '../helpers/sluice.js';
import { startWsBackend } from '../helpers/ws-backend.js';
import { makeCerts } from '../tls/fixtures/tls.js';
import { open, refusal, sendAndWait, waitClosed, waitMessages } from '../helpers/ws-client.js';

const certs = await makeCerts(t, ['ca'], { localhost: { names: ['localhost', '127.0.0.1'] } });
const leaf = certs.leaves.localhost!;
const caPem = certs.cas.ca!.pem.certPem;

t.test('routes: websocket: false is 403, rewrites and header edits apply, respond routes answer as plain HTTP', async (t) => {
  const chat = await startWsBackend(t);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-ws-'));
  const file = join(dir, 'sluice.yaml');
  writeFileSync(
    file,
    [
      'pools:',
      `  chat: { upstreams: ["${chat.url}"] }`,
      'routes:',
      '  - { match: { path_prefix: /nows }, pool: chat, websocket: false }',
      '  - { match: { path_prefix: /fixed }, respond: { status: 200, body: "fixed\\n" } }',
      '  - { match: { path_prefix: /v1 }, pool: chat, strip_prefix: /v1, request_headers: { set: { x-route: v1 } } }',
      '',
    ].join('\n'),
  );
  const sluice = await startSluice(t, { upstreams: [], env: { SLUICE_CONFIG: file } });
  const base = `ws://127.0.0.1:${sluice.port}`;

  const denied = await refusal(`${base}/nows/room`);
  t.equal(denied.status, 403, 'a route that disallows WebSockets answers the handshake 403');
  t.equal(denied.headers['x-sluice-error'], 'websocket-disabled');
  t.equal(chat.handshakes.length, 0, 'the backend never saw it');

  const fixed = await refusal(`${base}/fixed`);
  t.equal(fixed.status, 200);
  t.equal(fixed.body, 'fixed\n', 'a respond route answers the handshake with its fixed response');

  const none = await refusal(`${base}/elsewhere`);
  t.equal(none.status, 404);
  t.equal(none.headers['x-sluice-error'], 'no-route');

  const o = await open(`${base}/v1/room?id=7`);
  const hs = chat.handshakes.at(-1)!;
  t.equal(hs.url, '/room?id=7', 'strip_prefix applied to the handshake target');
  t.equal(hs.headers['x-route'], 'v1', 'request header edits applied');
  o.ws.send('over the route');
  await waitMessages(o, 1);
  t.equal(o.received[0]!.data.toString(), 'over the route');
  o.ws.close();
  await waitClosed(o);
});

t.test('wss:// on the TLS listener to a wss:// (https://) pool verified against a private CA', async (t) => {
  const backend = await startWsBackend(t, { cert: leaf.pem.certPem, key: leaf.pem.keyPem });
  const tlsPort = await freePort();
  const sluice = await startSluice(t, {
    upstreams: [`https://localhost:${backend.port}`],
    env: {
      SLUICE_TLS_LISTEN: `127.0.0.1:${tlsPort}`,
      SLUICE_TLS_CERT: leaf.cert,
      SLUICE_TLS_KEY: leaf.key,
      SLUICE_UPSTREAM_CA: certs.cas.ca!.cert,
    },
  });
  const big = Buffer.alloc(300_000, 3);
  const o = await sendAndWait(
    t,
    () => open(`wss://localhost:${tlsPort}/secure`, ['chat'], { ca: caPem }),
    (o) => {
      o.ws.send(big);
      o.ws.send('text over TLS');
    },
    2,
  );
  t.equal(o.ws.protocol, 'chat');
  const hs = backend.handshakes.at(-1)!;
  t.equal(hs.headers['x-forwarded-proto'], 'https', 'the backend learns the client came over TLS');
  t.ok(o.received[0]!.data.equals(big), 'binary relayed over TLS both legs');
  t.equal(o.received[1]!.data.toString(), 'text over TLS');
  o.ws.close(4100, 'tls bye');
  t.equal((await waitClosed(o)).code, 4100);
  // The plain listener proxies WebSockets too, to the same TLS pool.
  const p = await open(`ws://127.0.0.1:${sluice.port}/plain`);
  t.equal(backend.handshakes.at(-1)!.headers['x-forwarded-proto'], 'http');
  p.ws.close();
  await waitClosed(p);
});

t.test('an https:// pool whose certificate is not trusted: the handshake gets 502', async (t) => {
  const backend = await startWsBackend(t, { cert: leaf.pem.certPem, key: leaf.pem.keyPem });
  const sluice = await startSluice(t, { upstreams: [`https://localhost:${backend.port}`], env: { SLUICE_RETRIES: '0' } });
  const r = await refusal(`ws://127.0.0.1:${sluice.port}/`);
  t.equal(r.status, 502);
  t.equal(backend.conns.length, 0);
});
