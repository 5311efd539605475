// Upstream pipelining (SLUICE_UPSTREAM_PIPELINE, on by default), through the real proxy against a
// raw backend that answers each connection's requests strictly in order. What must hold: every
// client gets the response to its own request (the proxy matches responses to requests by order),
// only bodiless GET/HEAD ride behind another request, the depth is bounded, a connection that ends
// mid-pipeline (Connection: close, a reset, a client leaving) costs no request its answer, and a
// slow response does not hold the requests behind it past SLUICE_UPSTREAM_PIPELINE_HOL_MS. With the
// variable at 1, a backend connection never has two requests outstanding.

import t, { type Test } from 'tap';
import http from 'node:http';
import type net from 'node:net';
import { ensureBuilt, startSluice } from '../helpers/sluice.js';
import { startRawBackend, type RawBackend } from '../helpers/backends.js';

/** What the backend saw: the most requests outstanding at once on one connection, and mixes. */
interface Seen {
  maxOutstanding: number;
  /** A POST arrived while another request was outstanding, or a request while a POST was. */
  postShared: boolean;
  /** Request lines answered, in order, per connection. */
  answered: string[][];
  /** How many times each request target arrived (a guard's re-send makes it 2). */
  arrivals: Map<string, number>;
}

/**
 * A backend that parses request heads (and Content-Length bodies) as they arrive and answers them
 * one after another, each after its path's delay. Paths:
 *   /n/<id>            200, body "<METHOD> <id>"
 *   /slow/<id>         the same after 30 ms
 *   /hold/<id>         the same after 300 ms
 *   /chunked/<id>      the same, chunked
 *   /close/<id>        the same with Connection: close, then the connection ends (later requests unanswered)
 *   /drop-once/<id>    the first time: the connection is destroyed unanswered; then as /n
 */
async function orderedBackend(t: Test): Promise<{ raw: RawBackend; seen: Seen }> {
  const seen: Seen = { maxOutstanding: 0, postShared: false, answered: [], arrivals: new Map() };
  const dropped = new Set<string>();
  const raw = await startRawBackend(t, (socket: net.Socket) => {
    const answered: string[] = [];
    seen.answered.push(answered);
    let buffered = '';
    let outstanding = 0;
    let postOutstanding = false;
    let chain = Promise.resolve();
    let ended = false;
    socket.on('data', (b: Buffer) => {
      buffered += b.toString('latin1');
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffered.slice(0, end);
        const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        buffered = buffered.slice(end + 4 + length);
        const [method, target] = head.split(' ') as [string, string];
        seen.arrivals.set(target, (seen.arrivals.get(target) ?? 0) + 1);
        if ((method === 'POST' && outstanding > 0) || postOutstanding) seen.postShared = true;
        outstanding++;
        if (method === 'POST') postOutstanding = true;
        seen.maxOutstanding = Math.max(seen.maxOutstanding, outstanding);
        chain = chain.then(async () => {
          if (ended) return;
          const [, kind, id] = target.split('/') as [string, string, string];
          if (kind === 'slow') await new Promise((r) => setTimeout(r, 30));
          if (kind === 'hold') await new Promise((r) => setTimeout(r, 300));
          if (kind === 'drop-once' && !dropped.has(id)) {
            dropped.add(id);
            ended = true;
            socket.destroy();
            return;
          }
          const body = `${method} ${id}`;
          const close = kind === 'close';
          let out: string;
          if (kind === 'chunked') {
            out = `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
          } else {
            out = `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n${close ? 'connection: close\r\n' : ''}\r\n${method === 'HEAD' ? '' : body}`;
          }
          answered.push(`${method} ${target}`);
          outstanding--;
          if (method === 'POST') postOutstanding = false;
          socket.write(out);
          if (close) {
            ended = true;
            socket.end();
          }
        });
      }
    });
  });
  return { raw, seen };
}

type Reply = { status: number; body: string; error?: string };

/** `paths.length` requests at once, each on its own keep-alive connection (they reach the proxy together). */
function burst(port: number, requests: { method?: string; path: string; body?: string }[], agent: http.Agent): Promise<Reply[]> {
  return Promise.all(
    requests.map(
      (r) =>
        new Promise<Reply>((resolve) => {
          const req = http.request({ port, host: '127.0.0.1', method: r.method ?? 'GET', path: r.path, agent }, (res) => {
            let body = '';
            res.setEncoding('latin1');
            res.on('data', (s: string) => (body += s));
            res.on('end', () => resolve({ status: res.statusCode!, body }));
            res.on('error', (err) => resolve({ status: 0, body, error: err.message }));
          });
          req.on('error', (err) => resolve({ status: 0, body: '', error: err.message }));
          req.end(r.body);
        }),
    ),
  );
}

t.before(ensureBuilt);

/**
 * The ordered backend behind a Sluice started with `env`, and a keep-alive agent. With `warm`, a
 * first burst leaves the backend connections having carried a response each: only such a
 * connection starts a batch.
 */
async function proxied(t: Test, env: Record<string, string>, warm: boolean): Promise<{ seen: Seen; port: number; agent: http.Agent }> {
  const { raw, seen } = await orderedBackend(t);
  const sluice = await startSluice(t, { upstreams: [raw.url], env });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  t.teardown(() => agent.destroy());
  if (warm) await burst(sluice.port, Array.from({ length: 8 }, (_, i) => ({ path: `/n/warm${i}` })), agent);
  return { seen, port: sluice.port, agent };
}

t.test('pipelined GET/HEAD responses go to their own clients, the depth is bounded, POST never shares', async (t) => {
  // The bound is set far above /slow's 30 ms: this test is about order, not the guard.
  const { seen, port, agent } = await proxied(t, { SLUICE_UPSTREAM_PIPELINE: '4', SLUICE_UPSTREAM_PIPELINE_HOL_MS: '10000' }, true);
  let rounds = 0;
  while (seen.maxOutstanding < 2 && rounds < 40) {
    rounds++;
    const kinds = ['n', 'slow', 'chunked'];
    const requests = Array.from({ length: 48 }, (_, i) => {
      if (i % 7 === 3) return { method: 'POST', path: `/n/r${rounds}p${i}`, body: 'x'.repeat(i) };
      if (i % 5 === 1) return { method: 'HEAD', path: `/n/r${rounds}h${i}` };
      return { path: `/${kinds[i % 3]}/r${rounds}g${i}` };
    });
    const replies = await burst(port, requests, agent);
    const wrong = replies
      .map((r, i) => ({ r, want: requests[i]!.method === 'HEAD' ? '' : `${requests[i]!.method ?? 'GET'} ${requests[i]!.path.split('/')[2]}` }))
      .filter(({ r, want }) => r.status !== 200 || r.body !== want);
    t.strictSame(wrong, [], `round ${rounds}: every client got its own response`);
  }
  t.ok(seen.maxOutstanding >= 2, `requests were pipelined (most outstanding on one connection: ${seen.maxOutstanding}, after ${rounds} rounds)`);
  t.ok(seen.maxOutstanding <= 4, `never more than SLUICE_UPSTREAM_PIPELINE outstanding (${seen.maxOutstanding})`);
  t.notOk(seen.postShared, 'a POST never shares a connection with another outstanding request');
});

t.test('a connection ending mid-pipeline (close, reset) and clients leaving cost no other request its answer', async (t) => {
  const { seen, port, agent } = await proxied(t, { SLUICE_UPSTREAM_PIPELINE: '8', SLUICE_UPSTREAM_PIPELINE_HOL_MS: '10000' }, true);
  for (let round = 0; round < 6; round++) {
    const requests = Array.from({ length: 40 }, (_, i) => {
      const kind = i % 10 === 2 ? 'close' : i % 10 === 6 ? 'drop-once' : i % 2 === 0 ? 'slow' : 'n';
      return { path: `/${kind}/c${round}i${i}` };
    });
    // Clients that leave right after sending: their responses are read and dropped by the proxy.
    const leavers = Array.from({ length: 10 }, (_, i) => ({ path: `/slow/c${round}gone${i}` }));
    const leaving = new http.Agent({ keepAlive: false });
    for (const r of leavers) {
      const req = http.request({ port: port, host: '127.0.0.1', path: r.path, agent: leaving });
      req.on('error', () => {});
      req.end();
      setTimeout(() => req.destroy(), 5);
    }
    const replies = await burst(port, requests, agent);
    const wrong = replies.map((r, i) => ({ r, want: `GET ${requests[i]!.path.split('/')[2]}` })).filter(({ r, want }) => r.status !== 200 || r.body !== want);
    t.strictSame(wrong, [], `round ${round}: every remaining client got its own response`);
    leaving.destroy();
  }
  t.ok(seen.maxOutstanding >= 2, `requests were pipelined (most outstanding on one connection: ${seen.maxOutstanding})`);
  // The proxy is still healthy afterwards, and its backend connections are in step.
  const after = await burst(port, Array.from({ length: 20 }, (_, i) => ({ path: `/n/after${i}` })), agent);
  t.strictSame(
    after.map((r) => `${r.status} ${r.body}`),
    Array.from({ length: 20 }, (_, i) => `200 GET after${i}`),
    'later requests are answered correctly',
  );
});

t.test('at its defaults the proxy pipelines, and a slow response does not hold the requests behind it', async (t) => {
  const { seen, port, agent } = await proxied(t, {}, true);
  let rounds = 0;
  let resent: string[] = [];
  // Until some /n request was queued behind a /hold one and the guard sent it again (the backend
  // saw it twice); a round where none was queued behind a /hold proves nothing about the guard.
  while (resent.length === 0 && rounds < 20) {
    rounds++;
    const requests = Array.from({ length: 32 }, (_, i) => ({ path: `/${i % 4 === 0 ? 'hold' : 'n'}/h${rounds}i${i}` }));
    const started = Date.now();
    const times: number[] = [];
    const replies = await Promise.all(
      requests.map((r, i) =>
        burst(port, [r], agent).then(([reply]) => {
          times[i] = Date.now() - started;
          return reply!;
        }),
      ),
    );
    const wrong = replies.map((r, i) => ({ r, want: `GET ${requests[i]!.path.split('/')[2]}` })).filter(({ r, want }) => r.status !== 200 || r.body !== want);
    t.strictSame(wrong, [], `round ${rounds}: every client got its own response`);
    const fastest = Math.min(...times.filter((_, i) => i % 4 === 0));
    const lateFast = times.filter((ms, i) => i % 4 !== 0 && ms >= fastest);
    t.strictSame(lateFast, [], `round ${rounds}: every /n answered before the first /hold (${fastest} ms)`);
    resent = [...seen.arrivals].filter(([target, n]) => n > 1 && target.startsWith('/n/')).map(([target]) => target);
  }
  t.ok(seen.maxOutstanding >= 2, `pipelined by default (most outstanding on one connection: ${seen.maxOutstanding})`);
  t.ok(resent.length > 0, `the guard sent queued requests again (${resent.length} after ${rounds} rounds)`);
});

t.test('with SLUICE_UPSTREAM_PIPELINE=1 a backend connection never has two requests outstanding', async (t) => {
  const { seen, port, agent } = await proxied(t, { SLUICE_UPSTREAM_PIPELINE: '1' }, false);
  for (let round = 0; round < 5; round++) {
    const requests = Array.from({ length: 48 }, (_, i) => ({ path: `/${i % 2 ? 'n' : 'slow'}/d${round}i${i}` }));
    const replies = await burst(port, requests, agent);
    t.equal(replies.filter((r, i) => r.status === 200 && r.body === `GET d${round}i${i}`).length, 48, `round ${round}: all answered`);
  }
  t.equal(seen.maxOutstanding, 1, 'one request at a time per backend connection');
});
