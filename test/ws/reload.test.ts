// A reload (SIGHUP) that removes a backend: its open WebSockets keep working, then get 1001 both
// ways one drain timeout later; WebSockets on the backends that stay are left alone.

import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSluice } from '../helpers/sluice.js';
import { startWsBackend } from '../helpers/ws-backend.js';
import { until } from '../helpers/wait.js';
import { open, waitClosed, waitMessages } from '../helpers/ws-client.js';

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
