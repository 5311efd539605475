// Bodies both ways, byte for byte: large uploads with and without a length, a large download, a
// chunked stream relayed piece by piece, HEAD/204/304 without a body, and Expect: 100-continue.

import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { ensureBuilt, startSluice, type Sluice } from '../helpers/sluice.js';
import { startBackend } from '../helpers/backends.js';
import { rawConnect } from '../helpers/raw-client.js';
import { until } from '../helpers/wait.js';

const MiB = 1024 * 1024;
const DOWNLOAD = randomBytes(24 * MiB);
const DOWNLOAD_SHA = sha256(DOWNLOAD);
/** The slow stream: SLOW_PIECES pieces, each written after the client has the one before. */
const SLOW_PIECES = 15;
/** Pieces the client has received of the slow stream. */
let slowReceived = 0;
/** Resolves once the client has received `n` pieces of the slow stream. */
const slowClientGot = (n: number): Promise<void> => until(`the client to receive piece ${n - 1}`, () => slowReceived >= n);

let sluice: Sluice;
let agent: Agent;
let backendUrl = '';

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

t.before(async () => {
  await ensureBuilt();
  const backend = await startBackend(t, (req, res) => {
    const path = req.url!.split('?')[0];
    if (path === '/upload') {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        hash.update(c);
        bytes += c.length;
      });
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            sha: hash.digest('hex'),
            bytes,
            contentLength: req.headers['content-length'] ?? null,
            transferEncoding: req.headers['transfer-encoding'] ?? null,
            expect: req.headers.expect ?? null,
          }),
        );
      });
    } else if (path === '/download') {
      res.writeHead(200, { 'content-length': DOWNLOAD.length });
      // In pieces, as a real backend streams a file.
      let off = 0;
      const pump = (): void => {
        while (off < DOWNLOAD.length) {
          const piece = DOWNLOAD.subarray(off, off + 256 * 1024);
          off += piece.length;
          if (!res.write(piece)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    } else if (path === '/slow') {
      res.writeHead(200, { 'content-type': 'text/plain' }); // no length: chunked
      // Each piece is written only once the client has received the one before: a proxy that
      // held the body back would never see the stream finish.
      let i = 0;
      const next = (): void => {
        if (res.destroyed) return;
        if (i === SLOW_PIECES) return void res.end();
        res.write(`piece ${i++}\n`);
        void slowClientGot(i).then(next, () => res.destroy());
      };
      next();
    } else if (path === '/head') {
      res.writeHead(200, { 'content-length': '1234', 'content-type': 'application/octet-stream' });
      res.end(req.method === 'HEAD' ? undefined : Buffer.alloc(1234, 0x61));
    } else if (path === '/204') {
      res.writeHead(204, { 'x-was': '204' });
      res.end();
    } else if (path === '/304') {
      res.writeHead(304, { etag: '"v1"' });
      res.end();
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  backendUrl = backend.url;
  sluice = await startSluice(t, { upstreams: [backend.url] });
  agent = new Agent({ connections: 4 });
  t.teardown(() => agent.close());
});

t.test('an 8 MiB upload with Content-Length arrives byte for byte', async (t) => {
  const body = randomBytes(8 * MiB);
  const res = await request(`${sluice.url}/upload`, { method: 'POST', body, dispatcher: agent });
  t.equal(res.statusCode, 200);
  const seen = (await res.body.json()) as Record<string, unknown>;
  t.equal(seen.bytes, body.length);
  t.equal(seen.sha, sha256(body), 'same bytes');
  t.equal(seen.contentLength, String(body.length), 'length framing kept');
});

t.test('a chunked upload with no length arrives byte for byte', async (t) => {
  const pieces: Buffer[] = [];
  for (let size = 1; size < 4 * MiB; size = size * 3 + 7) pieces.push(randomBytes(size));
  const whole = Buffer.concat(pieces);
  const res = await request(`${sluice.url}/upload`, {
    method: 'PUT',
    body: Readable.from(pieces),
    dispatcher: agent,
  });
  t.equal(res.statusCode, 200);
  const seen = (await res.body.json()) as Record<string, unknown>;
  t.equal(seen.bytes, whole.length);
  t.equal(seen.sha, sha256(whole), 'same bytes');
  t.equal(seen.transferEncoding, 'chunked');
  t.equal(seen.contentLength, null);
});

t.test('a 24 MiB download arrives byte for byte', async (t) => {
  const res = await request(`${sluice.url}/download`, { dispatcher: agent });
  t.equal(res.statusCode, 200);
  t.equal(res.headers['content-length'], String(DOWNLOAD.length));
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of res.body) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  t.equal(bytes, DOWNLOAD.length);
  t.equal(hash.digest('hex'), DOWNLOAD_SHA, 'same bytes');
});

t.test('a slowly streamed chunked download arrives complete, piece by piece as it is written', async (t) => {
  const res = await request(`${sluice.url}/slow`, { dispatcher: agent });
  t.equal(res.statusCode, 200);
  let text = '';
  for await (const chunk of res.body) {
    text += (chunk as Buffer).toString();
    slowReceived = text.split('\n').length - 1;
  }
  const expected = Array.from({ length: SLOW_PIECES }, (_, i) => `piece ${i}\n`).join('');
  t.equal(text, expected, 'every piece, in order: each was relayed before the backend wrote the next');
});

t.test('HEAD keeps Content-Length and carries no body', async (t) => {
  const client = await rawConnect(t, sluice.port);
  await client.write('HEAD /head HTTP/1.1\r\nHost: a\r\n\r\n');
  const head = await client.response(0, { noBody: true });
  t.equal(head.status, 200);
  t.same(head.all('content-length'), ['1234']);
  t.same(head.all('transfer-encoding'), []);
  // Any body byte after the head would sit in front of the next response, which must start
  // exactly where the head ended.
  await client.write('GET /head HTTP/1.1\r\nHost: a\r\n\r\n');
  const full = await client.response(head.end);
  t.equal(full.status, 200, 'nothing after the head: the next response starts right after it');
  t.equal(full.body.length, 1234);
});

t.test('204 and 304 carry no body and no bogus length', async (t) => {
  const client = await rawConnect(t, sluice.port);
  await client.write('GET /204 HTTP/1.1\r\nHost: a\r\n\r\n');
  const noContent = await client.response();
  t.equal(noContent.status, 204);
  t.same(noContent.all('content-length'), [], 'a 204 has no Content-Length (RFC 9110 §8.6)');
  t.same(noContent.all('transfer-encoding'), []);
  t.same(noContent.all('x-was'), ['204']);
  await client.write('GET /304 HTTP/1.1\r\nHost: a\r\nIf-None-Match: "v1"\r\n\r\n');
  const notModified = await client.response(noContent.end);
  t.equal(notModified.status, 304);
  t.same(notModified.all('etag'), ['"v1"']);
  t.same(notModified.all('transfer-encoding'), []);
  t.ok(notModified.all('content-length').every((v) => v !== '0' && Number(v) < 2 ** 53), 'no made-up length');
  await client.write('GET /head HTTP/1.1\r\nHost: a\r\n\r\n');
  const next = await client.response(notModified.end);
  t.equal(next.status, 200, 'no stray body bytes: the next response parses');
  t.equal(next.body.length, 1234);

  // And a client library agrees.
  const res = await request(`${sluice.url}/204`, { dispatcher: agent });
  t.equal(res.statusCode, 204);
  t.equal((await res.body.arrayBuffer()).byteLength, 0);
});

t.test('Expect: 100-continue: the body is sent after the interim 100', async (t) => {
  const client = await rawConnect(t, sluice.port);
  await client.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n');
  const got100 = await client.waitFor((text) => /^HTTP\/1\.1 100 Continue\r\n\r\n/.test(text), 3000);
  t.ok(got100, '100 Continue before any body byte was sent');
  const interim = client.receivedBytes;
  await client.write('hello world');
  const res = await client.response(interim);
  t.equal(res.status, 200);
  const seen = JSON.parse(res.body.toString()) as Record<string, unknown>;
  t.equal(seen.bytes, 11);
  t.equal(seen.sha, sha256(Buffer.from('hello world')));
  t.equal(seen.expect, null, 'the expectation was met here, not passed on');
});

t.test('a body over SLUICE_MAX_BODY_BYTES gets 413 and a closed connection', async (t) => {
  const limited = await startSluice(t, { upstreams: [backendUrl], env: { SLUICE_MAX_BODY_BYTES: '1000' } });
  // Declared too large: refused before anything is forwarded.
  const declared = await rawConnect(t, limited.port);
  await declared.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n' + 'x'.repeat(5000));
  const tooLarge = await declared.response();
  t.equal(tooLarge.status, 413);
  t.ok(await declared.waitClosed(2000), 'closed after the 413');
  // Chunked, found too large on the way: the upstream request is abandoned.
  const chunked = await rawConnect(t, limited.port);
  await chunked.write('POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n');
  await chunked.write('400\r\n' + 'y'.repeat(1024) + '\r\n');
  const refused = await chunked.response();
  t.equal(refused.status, 413);
  t.ok(await chunked.waitClosed(2000), 'closed after the 413');
  // Under the limit is fine.
  const res = await request(`${limited.url}/upload`, { method: 'POST', body: 'z'.repeat(1000), dispatcher: agent });
  t.equal(res.statusCode, 200);
  t.equal(((await res.body.json()) as { bytes: number }).bytes, 1000);
});
