// Hostile and malformed requests on raw sockets. Each one must get a 400/431 or a closed
// connection; none may reach the backend, least of all a request smuggled in behind it; and Sluice
// must go on serving. The backend counts every request it sees.

import t, { type Test } from 'tap';
import { ensureBuilt, startSluice, type Sluice } from '../helpers/sluice.js';
import { startBackend, type HttpBackend } from '../helpers/backends.js';
import { RawClient, rawConnect } from '../helpers/raw-client.js';

const MAX_HEADER_BYTES = 4096;
/** uWS closes a connection that never forms a request only at its idle timeout (about 10 s). */
const UWS_IDLE_CLOSE_MS = 20_000;
const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n';

let backend: HttpBackend;
let sluice: Sluice;

t.before(async () => {
  await ensureBuilt();
  backend = await startBackend(t);
  sluice = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_MAX_HEADER_BYTES: String(MAX_HEADER_BYTES) } });
});

/** Status code of the first response in `text`, or 0 when there is none. */
function statusOf(text: string): number {
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(text);
  return m ? Number(m[1]) : 0;
}

/**
 * Send `bytes` (a string, or pieces written 30 ms apart); expect a refusal (400/431 and a close,
 * or a close with no answer) and nothing at the backend.
 */
async function refused(tt: Test, name: string, bytes: string | string[], statuses = [400]): Promise<void> {
  const before = backend.requests.length;
  const client = await rawConnect(tt, sluice.port);
  for (const piece of Array.isArray(bytes) ? bytes : [bytes]) {
    // Sluice may close before the last piece: that is a refusal too, not a test failure.
    if (client.closed || !(await client.write(piece).then(() => true, () => false))) break;
    if (Array.isArray(bytes)) await new Promise((r) => setTimeout(r, 30));
  }
  const closed = await client.waitClosed(3000);
  const text = client.text();
  const status = statusOf(text);
  tt.ok(closed, `${name}: connection closed`);
  tt.ok(status === 0 || statuses.includes(status), `${name}: ${status === 0 ? 'no answer' : status}`);
  tt.equal(text.indexOf('HTTP/1.1', 1), -1, `${name}: one answer at most`);
  // A request sent after the refusal, through the same worker, marks the point by which anything
  // forwarded from the refused connection would have reached the backend.
  const marker = await rawConnect(tt, sluice.port);
  await marker.write(`GET /marker HTTP/1.1\r\nHost: a\r\n\r\n`);
  tt.equal((await marker.response()).status, 200, `${name}: the marker request is served`);
  marker.destroy();
  tt.same(
    backend.requests.slice(before).map((r) => r.url),
    ['/marker'],
    `${name}: nothing else reached the backend`,
  );
}

// Opened first: uWS holds these until its idle timeout, so they run alongside the rest.
const lingering: [string, string, RawClient][] = [];
t.before(async () => {
  const cases: [string, string][] = [
    ['garbage request line', 'HELLO THERE\r\n\r\n' + SMUGGLED],
    ['control bytes', '\x00\x01\x02\x03 / HTTP/1.1\r\n\r\n' + SMUGGLED],
    ['a TLS ClientHello', '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03' + SMUGGLED],
    // This uWS build leaves HTTP/1.0 unanswered (README: HTTP/1.0 clients are not supported).
    ['HTTP/1.0', 'GET /old HTTP/1.0\r\nHost: a\r\n\r\n'],
  ];
  for (const [name, bytes] of cases) {
    const client = new RawClient(sluice.port);
    t.teardown(() => client.destroy());
    await client.opened();
    await client.write(bytes);
    lingering.push([name, bytes, client]);
  }
});

t.test('Content-Length together with Transfer-Encoding', async (t) => {
  await refused(t, 'CL then TE', 'POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' + SMUGGLED);
  await refused(t, 'TE then CL', 'POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n' + SMUGGLED);
});

t.test('two differing Content-Length headers', async (t) => {
  await refused(t, 'CL 5 and 6', 'POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello' + SMUGGLED);
  await refused(t, 'CL 0 and body-sized', `POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`);
  // Without a request behind it, the refusal itself is visible.
  await refused(t, 'CL 5 and 6, alone', 'POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!');
});

t.test('malformed Content-Length and Transfer-Encoding values', async (t) => {
  await refused(t, 'CL with a sign', 'POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello' + SMUGGLED);
  await refused(t, 'CL list', 'POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello' + SMUGGLED);
  await refused(t, 'TE gzip, chunked', 'POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n' + SMUGGLED);
  await refused(t, 'TE xchunked', 'POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n' + SMUGGLED);
});

t.test('two Host headers', async (t) => {
  await refused(t, 'two Hosts', 'GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n' + SMUGGLED);
  await refused(t, 'two Hosts, alone', 'GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n');
});

t.test('a head over SLUICE_MAX_HEADER_BYTES', async (t) => {
  const big = 'X-Big: ' + 'a'.repeat(MAX_HEADER_BYTES) + '\r\n';
  await refused(t, 'in one write', `GET /a HTTP/1.1\r\nHost: a\r\n${big}\r\n` + SMUGGLED, [431]);
  await refused(t, 'in one write, alone', `GET /a HTTP/1.1\r\nHost: a\r\n${big}\r\n`, [431]);
  await refused(t, 'in pieces', ['GET /a HTTP/1.1\r\nHost: a\r\n', big, '\r\n'], [431]);
  const many = Array.from({ length: 200 }, (_, i) => `X-H${i}: ${'v'.repeat(20)}\r\n`).join('');
  await refused(t, 'many small headers', `GET /a HTTP/1.1\r\nHost: a\r\n${many}\r\n`, [431]);
  // Just under the limit still passes.
  const client = await rawConnect(t, sluice.port);
  const fits = 'X-Fits: ' + 'a'.repeat(MAX_HEADER_BYTES - 200) + '\r\n';
  await client.write(`GET /fits HTTP/1.1\r\nHost: a\r\n${fits}\r\n`);
  t.equal((await client.response()).status, 200, 'a head under the limit is served');
});

t.test('malformed requests uWS never completes: closed unanswered, nothing forwarded', async (t) => {
  for (const [name, , client] of lingering) {
    const closed = await client.waitClosed(UWS_IDLE_CLOSE_MS);
    t.ok(closed, `${name}: closed`);
    t.equal(client.receivedBytes, 0, `${name}: no answer`);
  }
  t.notOk(
    backend.requests.some((r) => r.url === '/smuggled' || r.url === '/old'),
    'nothing from them reached the backend',
  );
});

t.test('Sluice goes on serving after all that', async (t) => {
  const client = await rawConnect(t, sluice.port);
  await client.write('GET /still-here HTTP/1.1\r\nHost: a\r\n\r\n');
  const res = await client.response();
  t.equal(res.status, 200);
  t.equal(backend.requests.at(-1)?.url, '/still-here');
  t.notOk(
    backend.requests.some((r) => r.url === '/smuggled'),
    'no smuggled request reached the backend at any point',
  );
  t.notOk(sluice.stderr().includes('Assertion failed'), 'no native assertion');
});
