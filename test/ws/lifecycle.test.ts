// WebSockets across the proxy's own life: a reload (SIGHUP) that removes a backend (its WebSockets
// keep working, then get 1001 both ways one drain timeout later; the others are left alone), a
// worker crash (the shared counts do not keep a dead thread's WebSockets), the access log.

import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSluice } from '../helpers/sluice.js';
import { startWsBackend } from '../helpers/ws-backend.js';
import { until } from '../helpers/wait.js';
import { open, refusal, waitClosed, waitMessages } from '../helpers/ws-client.js';

t.test('SIGHUP removing a backend: its WebSockets get 1001 after the drain timeout, the others stay', async (t) => {
  const a = await startWsBackend(t);
  const b = await startWsBackend(t);
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-ws-hup-')), 'sluice.env');
  const env = (list: string[]): string => `SLUICE_UPSTREAMS=${list.join(',')}\nSLUICE_BALANCER=round-robin\nSLUICE_DRAIN_TIMEOUT_MS=1000\n`;
  writeFileSync(file, env([a.url, b.url]));
  const sluice = await startSluice(t, { upstreams: [], env: { SLUICE_ENV_FILE: file } });
  const first = await open(`ws://127.0.0.1:${sluice.port}/`);
  const second = await open(`ws://127.0.0.1:${sluice.port}/`);
  t.equal(a.conns.length, 1);
  t.equal(b.conns.length, 1);
  // Which client is on a: the one whose message a echoes.
  first.ws.send('who');
  await waitMessages(first, 1);
  const [leaving, staying] = a.conns[0]!.messages === 1 ? [first, second] : [second, first];
  const aConn = a.conns[0]!;

  const mark = sluice.logs().length;
  writeFileSync(file, env([b.url]));
  sluice.child.kill('SIGHUP');
  await sluice.waitForLog((l) => l.msg === 'configuration reloaded', 5000, mark);
  const before = leaving.received.length;
  leaving.ws.send('still on a');
  await waitMessages(leaving, before + 1);
  t.equal(leaving.received.at(-1)!.data.toString(), 'still on a', 'the removed backend still serves its WebSocket during the drain');
  t.same(await waitClosed(leaving), { code: 1001, reason: 'backend removed' });
  await until('a to see the close', () => aConn.closed !== null);
  t.equal(aConn.closed!.code, 1001);
  const n = staying.received.length;
  staying.ws.send('still here');
  await waitMessages(staying, n + 1);
  t.equal(staying.closed, null, 'the WebSocket on the remaining backend is untouched');
  staying.ws.close();
  await waitClosed(staying);
});

t.test('a worker crash: its WebSockets end, and the shared table stops counting them', async (t) => {
  const backend = await startWsBackend(t);
  const sluice = await startSluice(t, { upstreams: [backend.url], testHooks: true });
  const o = await open(`ws://127.0.0.1:${sluice.port}/`);
  const conn = backend.conns.at(-1)!;
  t.equal((await sluice.snapshot()).slots[0]!.openConns, 1, 'the open WebSocket counts as a connection');
  const mark = sluice.logs().length;
  sluice.child.kill('SIGUSR2');
  await sluice.waitForLog((l) => l.msg === 'worker restarted', 10_000, mark);
  await waitClosed(o);
  await until('the backend to see its socket go', () => conn.closed !== null);
  await until('open connections back to 0', async () => (await sluice.snapshot()).slots[0]!.openConns === 0);
  const again = await open(`ws://127.0.0.1:${sluice.port}/`);
  again.ws.send('after the crash');
  await waitMessages(again, 1);
  t.equal(again.received[0]!.data.toString(), 'after the crash', 'the replacement worker proxies WebSockets');
  again.ws.close();
  await waitClosed(again);
});

t.test('access log: one line per handshake, 101 or refused', async (t) => {
  const backend = await startWsBackend(t);
  const sluice = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_ACCESS_LOG: 'on' } });
  const o = await open(`ws://127.0.0.1:${sluice.port}/live?x=1`);
  o.ws.close();
  await waitClosed(o);
  await refusal(`ws://127.0.0.1:${sluice.port}/refuse`);
  t.equal(await sluice.stop(), 0);
  const lines = sluice.logs().filter((l) => l.type === 'access');
  t.equal(lines.length, 2);
  t.match(lines.find((l) => l.path === '/live?x=1'), { method: 'GET', status: 101, backend: `127.0.0.1:${backend.port}`, client: '127.0.0.1' });
  t.match(lines.find((l) => l.path === '/refuse'), { status: 403 });
});
