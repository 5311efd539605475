// Rate limits and max_in_flight through the real proxy. The exactness test runs 4 workers over one
// key: the buckets are in the shared table, so the admitted count is the limit (one bucket of 40),
// where per-worker buckets would admit up to 4 × 40.

import t from 'tap';
import http from 'node:http';
import { ensureBuilt, freePort } from '../helpers/sluice.js';
import { startBackend } from '../helpers/backends.js';
import { blast, echoJson, request, startWithConfig } from './helpers.js';

t.before(ensureBuilt);

t.test('4 workers share one bucket: admitted = burst (a 1/min refill adds at most 1 while the test runs)', async (t) => {
  const backend = await startBackend(t, echoJson);
  const sluice = await startWithConfig(
    t,
    `pools: { api: { upstreams: ["${backend.url}"] } }
routes:
  - match: { path_prefix: / }
    pool: api
    rate_limit: [{ key: route, rate: 1/m, burst: 40 }]
`,
    { workers: 4 },
  );
  // 64 connections spread over the 4 workers by the kernel; 400 requests in all.
  const statuses = await blast(sluice.port, '/x', 400, 64);
  const admitted = statuses.filter((s) => s === 200).length;
  const limited = statuses.filter((s) => s === 429).length;
  t.equal(admitted + limited, 400, 'every request is either admitted or limited');
  t.ok(admitted >= 40 && admitted <= 41, `admitted ${admitted}, limit 40 (+1 refill at most); per-worker buckets would allow up to 160`);
});

t.test('429 carries Retry-After and the IETF RateLimit fields, exactly; /metrics counts by key kind', async (t) => {
  const backend = await startBackend(t, echoJson);
  const adminPort = await freePort();
  const sluice = await startWithConfig(
    t,
    `pools: { api: { upstreams: ["${backend.url}"] } }
routes:
  - name: by-ip
    match: { path_prefix: /ip }
    pool: api
    rate_limit: [{ key: client_ip, rate: 1/m, burst: 3 }]
  - match: { path_prefix: /hdr }
    pool: api
    rate_limit: [{ key: "header:x-api-key", rate: 2/s, burst: 2, name: per-key }]
`,
    { env: { SLUICE_ADMIN_LISTEN: `127.0.0.1:${adminPort}` } },
  );
  for (let i = 0; i < 3; i++) t.equal((await request(sluice.port, 'GET', '/ip')).status, 200, `request ${i + 1} of the burst passes`);
  const r = await request(sluice.port, 'GET', '/ip');
  t.equal(r.status, 429);
  t.equal(r.headers['retry-after'], '60', 'one token per minute: the next one in 60 s');
  t.equal(r.headers['ratelimit-policy'], '"client_ip";q=3;w=180');
  t.equal(r.headers['ratelimit'], '"client_ip";r=0;t=60');
  t.equal(r.body, 'rate limit exceeded\n');

  // Keyed by header: each key its own bucket; a request without the header is not limited by it.
  t.equal((await request(sluice.port, 'GET', '/hdr', { 'x-api-key': 'a' })).status, 200);
  t.equal((await request(sluice.port, 'GET', '/hdr', { 'x-api-key': 'a' })).status, 200);
  const a = await request(sluice.port, 'GET', '/hdr', { 'x-api-key': 'a' });
  t.equal(a.status, 429);
  t.equal(a.headers['retry-after'], '1');
  t.equal(a.headers['ratelimit-policy'], '"per-key";q=2;w=1');
  t.equal((await request(sluice.port, 'GET', '/hdr', { 'x-api-key': 'b' })).status, 200, 'another key has its own bucket');
  for (let i = 0; i < 5; i++) t.equal((await request(sluice.port, 'GET', '/hdr')).status, 200, 'no header: not counted');
  const metrics = (await request(adminPort, 'GET', '/metrics')).body;
  t.match(metrics, /^sluice_edge_rate_limited_total\{route="by-ip",key="client_ip"\} 1$/m);
  t.match(metrics, /^sluice_edge_rate_limited_total\{route="route-1",key="header"\} 1$/m);
  const edgeLines = metrics.split('\n').filter((l) => l.startsWith('sluice_edge_'));
  t.ok(edgeLines.length > 0 && edgeLines.every((l) => /^sluice_edge_\w+\{route="[^"]+",(key|reason|fail|result)="\w+"\} \d+$/.test(l) || /^sluice_edge_in_flight/.test(l)), 'labels are route and kind only: no key values, no clients');
});

t.test('max_in_flight: beyond it a fast 503, and the slot is given back when a request ends', async (t) => {
  const held: http.ServerResponse[] = [];
  let arrived = 0;
  const waiters: (() => void)[] = [];
  const backend = await startBackend(t, (req, res) => {
    req.resume();
    if (req.url === '/slow') {
      held.push(res);
      arrived++;
      for (const w of waiters.splice(0)) w();
      return;
    }
    res.end('fast');
  });
  const sluice = await startWithConfig(
    t,
    `pools: { api: { upstreams: ["${backend.url}"] } }
routes:
  - match: { path_prefix: / }
    pool: api
    max_in_flight: 2
`,
    { workers: 2 },
  );
  const agent = new http.Agent({ keepAlive: false });
  const slow = () =>
    new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: sluice.port, path: '/slow', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      req.end();
    });
  const first = [slow(), slow()];
  while (arrived < 2) await new Promise<void>((r) => waiters.push(r));
  const third = await request(sluice.port, 'GET', '/fast');
  t.equal(third.status, 503, 'a third request while two are in flight');
  t.equal(third.headers['x-sluice-error'], 'overloaded');
  for (const res of held.splice(0)) res.end('done');
  t.same(await Promise.all(first), [200, 200]);
  t.equal((await request(sluice.port, 'GET', '/fast')).status, 200, 'slots given back');
});

t.test('a refused request with a body gets its answer and a closed connection; nothing in the body is parsed as a request', async (t) => {
  const net = await import('node:net');
  let hits = 0;
  const backend = await startBackend(t, (req, res) => {
    hits++;
    req.resume();
    res.end('ok');
  });
  const sluice = await startWithConfig(
    t,
    `pools: { api: { upstreams: ["${backend.url}"] } }
routes:
  - match: { path_prefix: / }
    pool: api
    ip_deny: ["0.0.0.0/0"]
`,
  );
  const smuggled = 'GET /inner HTTP/1.1\r\nHost: x\r\n\r\n';
  const raw = `POST /outer HTTP/1.1\r\nHost: x\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`;
  const answer = await new Promise<string>((resolve, reject) => {
    const sock = net.connect(sluice.port, '127.0.0.1', () => sock.write(raw));
    let got = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (got += d));
    sock.on('close', () => resolve(got));
    sock.on('error', reject);
  });
  t.match(answer, /^HTTP\/1\.1 403 Forbidden\r\n/);
  t.equal(answer.match(/HTTP\/1\.1 /g)!.length, 1, 'one answer: the body was not taken for a second request');
  t.equal(hits, 0, 'the backend saw nothing');
});
