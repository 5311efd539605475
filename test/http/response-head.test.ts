// The response head as the client sees it: status code and reason phrase from the backend,
// repeated headers (Set-Cookie above all) kept as separate fields, and exactly one Date.

import t from 'tap';
import { ensureBuilt, startSluice, type Sluice } from '../helpers/sluice.js';
import { onRequestHeads, startRawBackend } from '../helpers/backends.js';
import { rawConnect, type RawResponse } from '../helpers/raw-client.js';

/** Scripted responses by request path (exact bytes after the status line's CRLF). */
const SCRIPT: Record<string, string> = {
  '/cookies':
    'HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/; HttpOnly\r\nSet-Cookie: b=2, c=3; Expires=Wed, 21 Oct 2037 07:28:00 GMT\r\n' +
    'Vary: Accept\r\nVary: Cookie\r\nContent-Length: 2\r\n\r\nok',
  '/503': 'HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\ndown for maintenance',
  '/teapot': "HTTP/1.1 418 I'm a teapot\r\nContent-Length: 5\r\n\r\nshort",
  '/custom': 'HTTP/1.1 200 Fine Thanks\r\nContent-Length: 0\r\n\r\n',
  '/404': 'HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nnot here!\r\n0\r\n\r\n',
  '/201': 'HTTP/1.1 201 Created\r\nLocation: /things/1\r\nContent-Length: 0\r\n\r\n',
  '/date': 'HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Length: 4\r\n\r\ndate',
};

let sluice: Sluice;

t.before(async () => {
  await ensureBuilt();
  const backend = await startRawBackend(t, (socket) => {
    onRequestHeads(socket, (head) => {
      const path = head.slice(head.indexOf(' ') + 1, head.indexOf(' HTTP/'));
      socket.write(SCRIPT[path] ?? 'HTTP/1.1 500 Unscripted\r\nContent-Length: 0\r\n\r\n');
    });
  });
  // Several 5xx in a row must not eject the only backend in the middle of this file.
  sluice = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_OUTLIER_CONSECUTIVE_5XX: '0' } });
});

async function get(tt: Parameters<typeof rawConnect>[0], path: string): Promise<RawResponse> {
  const client = await rawConnect(tt, sluice.port);
  await client.write(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`);
  const res = await client.response();
  client.destroy();
  return res;
}

t.test('two Set-Cookie headers stay two fields, values untouched', async (t) => {
  const res = await get(t, '/cookies');
  t.same(res.all('set-cookie'), ['a=1; Path=/; HttpOnly', 'b=2, c=3; Expires=Wed, 21 Oct 2037 07:28:00 GMT']);
  t.same(res.all('vary'), ['Accept', 'Cookie'], 'other repeated headers too');
});

t.test('status code and reason phrase pass through', async (t) => {
  const cases: [string, number, string, string][] = [
    ['/503', 503, 'Service Unavailable', 'down for maintenance'],
    ['/teapot', 418, "I'm a teapot", 'short'],
    ['/custom', 200, 'Fine Thanks', ''],
    ['/404', 404, 'Not Found', 'not here!'],
    ['/201', 201, 'Created', ''],
  ];
  for (const [path, status, reason, body] of cases) {
    const res = await get(t, path);
    t.equal(res.status, status, `${path}: status`);
    t.equal(res.reason, reason, `${path}: reason`);
    t.equal(res.body.toString(), body, `${path}: body`);
    t.same(res.all('x-sluice-error'), [], `${path}: a backend status, not one Sluice made`);
  }
  const unavailable = await get(t, '/503');
  t.same(unavailable.all('retry-after'), ['7'], "the backend's 503 headers, not Sluice's");
  t.same((await get(t, '/201')).all('location'), ['/things/1']);
});

t.test("the backend's Date is replaced: exactly one Date", async (t) => {
  const res = await get(t, '/date');
  const dates = res.all('date');
  t.equal(dates.length, 1, 'one Date header');
  t.not(dates[0], 'Thu, 01 Jan 1970 00:00:00 GMT', "Sluice's own clock");
  t.ok(Math.abs(Date.parse(dates[0]!) - Date.now()) < 60_000, 'a current date');
  t.equal(res.body.toString(), 'date');
});
