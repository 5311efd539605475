// Requests queued behind SLUICE_UPSTREAM_CONNECTIONS, through the real proxy: a queued request
// keeps the body it received while it waited and sends it once it gets the connection; one whose
// client leaves while queued never reaches the backend and frees its slot; and when a reload
// removes the backend, the requests queued for it go to the new one, even a POST (none of it had
// been sent).

import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, startSluice, type Sluice } from '../helpers/sluice.js';
import { startBackend, type HttpBackend } from '../helpers/backends.js';
import { rawConnect } from '../helpers/raw-client.js';
import { until } from '../helpers/wait.js';

/** Requests parked at /hold, released by the test. */
const held: (() => void)[] = [];
const backends: Record<'a' | 'b', HttpBackend> = {} as never;
let sluice: Sluice;
let file: string;

t.before(async () => {
  await ensureBuilt();
  for (const name of ['a', 'b'] as const) {
    backends[name] = await startBackend(t, (req, res) => {
      if (req.url === '/hold') return void held.push(() => res.end(`held by ${name}`));
      let bytes = '';
      req.setEncoding('latin1');
      req.on('data', (s: string) => (bytes += s));
      req.on('end', () => res.end(JSON.stringify({ name, method: req.method, body: bytes })));
    });
  }
  t.teardown(() => held.splice(0).forEach((release) => release()));
  file = join(mkdtempSync(join(tmpdir(), 'sluice-queue-')), 'sluice.env');
  writeFileSync(file, `SLUICE_UPSTREAMS=${backends.a.url}\n`);
  // One worker with one connection per backend: the second request in flight must queue.
  sluice = await startSluice(t, { upstreams: [], testHooks: true, env: { SLUICE_ENV_FILE: file, SLUICE_UPSTREAM_CONNECTIONS: '1' } });
});

/** In flight in the shared table, all backends. */
async function inFlight(): Promise<number> {
  return (await sluice.snapshot()).slots.reduce((sum, s) => sum + s.inFlight, 0);
}

t.test('a queued request keeps its body; a queued request whose client left never reaches the backend', async (t) => {
  const a = backends.a;
  const holder = await rawConnect(t, sluice.port);
  await holder.write('GET /hold HTTP/1.1\r\nHost: q\r\n\r\n');
  await a.request(0);

  const poster = await rawConnect(t, sluice.port);
  await poster.write('POST /echo HTTP/1.1\r\nHost: q\r\nContent-Length: 11\r\n\r\nhello world');
  await until('the POST to be in flight', async () => (await inFlight()) === 2);
  const leaver = await rawConnect(t, sluice.port);
  await leaver.write('GET /never HTTP/1.1\r\nHost: q\r\n\r\n');
  await until('the GET to be in flight', async () => (await inFlight()) === 3);
  t.equal(a.requests.length, 1, 'both wait for the one connection; the backend has only /hold');
  leaver.destroy();
  await until('the abandoned request to free its slot', async () => (await inFlight()) === 2);

  held.shift()!();
  t.equal((await holder.response()).body.toString(), 'held by a');
  const posted = await poster.response();
  t.equal(posted.status, 200);
  t.same(JSON.parse(posted.body.toString()), { name: 'a', method: 'POST', body: 'hello world' }, 'the body received while queued arrived whole');

  await holder.write('GET /after HTTP/1.1\r\nHost: q\r\n\r\n');
  t.equal((await holder.response((await holder.response()).end)).status, 200);
  t.same(
    a.requests.map((r) => r.url),
    ['/hold', '/echo', '/after'],
    'the abandoned GET never reached the backend',
  );
  t.equal(a.connections, 1, 'all over the one connection');
  t.equal(await inFlight(), 0);
});

t.test('a reload that removes the backend sends its queued requests to the new one, POST included', async (t) => {
  const { a, b } = backends;
  const holder = await rawConnect(t, sluice.port);
  const at = a.requests.length;
  await holder.write('GET /hold HTTP/1.1\r\nHost: q\r\n\r\n');
  await a.request(at);
  const poster = await rawConnect(t, sluice.port);
  await poster.write('POST /echo HTTP/1.1\r\nHost: q\r\nContent-Length: 3\r\n\r\nabc');
  await until('the POST to be queued', async () => (await inFlight()) === 2);

  writeFileSync(file, `SLUICE_UPSTREAMS=${b.url}\n`);
  const mark = sluice.logs().length;
  sluice.child.kill('SIGHUP');
  await sluice.waitForLog((l) => l.msg === 'configuration reloaded', 5000, mark);

  const posted = await poster.response();
  t.equal(posted.status, 200, 'the queued POST was served');
  t.same(JSON.parse(posted.body.toString()), { name: 'b', method: 'POST', body: 'abc' }, 'by the new backend, body and all');
  t.equal(a.requests.length, at + 1, 'the removed backend never saw it');

  held.shift()!();
  t.equal((await holder.response()).body.toString(), 'held by a', 'the request in flight on the removed backend finished there');
  await until('in-flight to return to 0', async () => (await inFlight()) === 0);
  t.pass('nothing left in flight');
});
