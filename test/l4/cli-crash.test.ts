// An L4 thread that dies (test hook: SIGWINCH makes L4 thread 0 throw) is replaced, and exactly
// its open connections come off the shared OPEN_CONNS (ConnLedger.forget), so least-conn does not
// go on seeing connections that died with it.

import t from 'tap';
import { ensureBuilt, freePort, startSluice } from '../helpers/sluice.js';
import { until as waitUntil } from '../helpers/wait.js';
import { adminGet, exchange, sample } from './fixtures/cli.js';
import { connect, echo, readAll } from './fixtures/net.js';

await ensureBuilt();

t.test('a dead L4 thread is restarted and its connections are taken off OPEN_CONNS', async (t) => {
  const backend = await echo(t);
  const [l4, admin] = await Promise.all([freePort(), freePort()]);
  const sluice = await startSluice(t, {
    upstreams: [`tcp://127.0.0.1:${backend.port}`],
    testHooks: true,
    env: { SLUICE_TCP_LISTEN: `127.0.0.1:${l4}`, SLUICE_ADMIN_LISTEN: `127.0.0.1:${admin}` },
  });
  const openConns = async (): Promise<number | undefined> =>
    sample((await adminGet(admin, '/metrics')).body, `sluice_backend_open_connections{backend="127.0.0.1:${backend.port}",pool="default"}`);
  const held = await Promise.all([connect(l4), connect(l4)]);
  for (const s of held) await exchange(s, 'x');
  t.equal(await openConns(), 2);

  const after = sluice.logs().length;
  const ends = held.map((s) => {
    s.on('error', () => {});
    return readAll(s);
  });
  sluice.child.kill('SIGWINCH');
  const exited = await sluice.waitForLog((l) => l.msg === 'L4 thread exited; restarting', 10_000, after);
  t.equal(exited.connections, 2, 'its two connections were forgotten');
  await Promise.all(ends);
  t.pass('the clients of the dead thread were closed');
  await sluice.waitForLog((l) => l.msg === 'L4 thread restarted', 10_000, after);
  t.equal(await openConns(), 0, 'OPEN_CONNS is back to zero');

  const fresh = await connect(l4);
  t.equal(await exchange(fresh, 'again'), 'again', 'the new thread serves');
  await waitUntil('one open connection', async () => (await openConns()) === 1);
  const metrics = (await adminGet(admin, '/metrics')).body;
  t.equal(sample(metrics, 'sluice_l4_thread_restarts_total'), 1);
  fresh.destroy();
});
