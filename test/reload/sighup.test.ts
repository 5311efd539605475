// SIGHUP on the built proxy, under steady GET load on keep-alive client connections: the upstream
// set is swapped through SLUICE_ENV_FILE with zero failed requests and zero client connections
// closed, and once the reload is logged only the new set serves; an invalid file is refused and the
// running configuration keeps serving; a request in flight on a backend the reload removes finishes
// there, on its own connections.

import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, type HttpBackend } from '../helpers/backends.js';
import { ensureBuilt, startSluice, type Sluice } from '../helpers/sluice.js';
import { rawConnect } from '../helpers/raw-client.js';
import { keepAliveLoad } from '../helpers/keep-alive-load.js';
import { once } from '../helpers/http-once.js';
import { until } from '../helpers/wait.js';

let sluice: Sluice;
let file: string;
/** Requests parked at a backend's /hold, released by the test. */
const held: (() => void)[] = [];
const backends = new Map<string, HttpBackend>();
const list = (...names: string[]) => names.map((n) => backends.get(n)!.url).join(',');

t.before(async () => {
  await ensureBuilt();
  for (const name of ['a', 'b', 'c', 'd', 'e']) {
    backends.set(
      name,
      await startBackend(t, (req, res) => {
        if (req.url === '/hold') held.push(() => res.end(`${name} finished`));
        else res.end(name);
      }),
    );
  }
  t.teardown(() => held.splice(0).forEach((release) => release()));
  file = join(mkdtempSync(join(tmpdir(), 'sluice-hup-')), 'sluice.env');
  writeFileSync(file, `# the pool\nSLUICE_UPSTREAMS=${list('a', 'b')}\n`);
  sluice = await startSluice(t, {
    upstreams: [],
    workers: 2,
    // Health checks on (the helper turns them off): the swap then goes through its checked two steps.
    env: { SLUICE_ENV_FILE: file, SLUICE_HEALTH_CHECK: 'on' },
  });
});

t.test('SIGHUP swaps the upstream set under load: no failed request, no client connection closed', async (t) => {
  const load = await keepAliveLoad(t, sluice.port, 6);
  await load.answeredSince(0, 60);
  t.ok(['a', 'b'].every((n) => load.outcomes.some((o) => o.backend === n)), 'a and b serve before the reload');

  // Swap a,b → c,d (also a policy change, and one that needs a restart).
  writeFileSync(file, `SLUICE_UPSTREAMS="${list('c', 'd')}"\nSLUICE_BALANCER=round-robin\nSLUICE_LISTEN=127.0.0.1:1\n`);
  let mark = sluice.logs().length;
  sluice.child.kill('SIGHUP');
  const reloaded = await sluice.waitForLog((l) => l.msg === 'configuration reloaded', 5000, mark);
  const afterReload = load.started;
  t.same(reloaded.changed, ['SLUICE_UPSTREAMS', 'SLUICE_BALANCER'], 'upstreams and policy changed');
  const upTo = sluice.logs().indexOf(reloaded);
  const checked = sluice.logs().slice(mark, upTo).filter((l) => l.msg === 'new backend passed its first health check');
  t.same(checked.map((l) => l.url).sort(), [backends.get('c')!.url, backends.get('d')!.url].sort(), 'both new backends passed a check before the old ones left');
  t.ok(
    sluice.logs().slice(mark).some((l) => l.msg.includes('only on restart') && JSON.stringify(l.variables) === '["SLUICE_LISTEN"]'),
    'the listen address is logged as needing a restart',
  );
  await load.answeredSince(afterReload, 60);
  const oldServed = backends.get('a')!.requests.length + backends.get('b')!.requests.length;

  // An invalid file: refused, and c,d keep serving.
  writeFileSync(file, `SLUICE_UPSTREAMS=${list('a')}\nSLUICE_WORKERS=many\n`);
  mark = sluice.logs().length;
  sluice.child.kill('SIGHUP');
  const refused = await sluice.waitForLog((l) => l.msg.startsWith('reload refused'), 5000, mark);
  const afterRefusal = load.started;
  t.match(refused.errors, [/SLUICE_WORKERS="many"/]);
  await load.answeredSince(afterRefusal, 60);
  await load.stop();

  t.same(load.broken, [], 'no client connection broke');
  t.equal(load.clients.filter((c) => c.closed).length, 0, 'all 6 client connections are still open: a reload closes none');
  const failed = load.outcomes.filter((o) => o.status !== 200);
  t.equal(failed.length, 0, `no failed requests out of ${load.outcomes.length} (${JSON.stringify(failed.slice(0, 3))})`);

  const late = load.outcomes.filter((o) => o.seq >= afterReload);
  t.ok(late.every((o) => o.backend === 'c' || o.backend === 'd'), 'requests started after the reload was logged went only to the new set');
  t.ok(late.some((o) => o.backend === 'c') && late.some((o) => o.backend === 'd'), 'both new backends serve');
  t.equal(backends.get('a')!.requests.length + backends.get('b')!.requests.length, oldServed, 'the refused file did not bring a back');
  const afterRefused = load.outcomes.filter((o) => o.seq >= afterRefusal);
  t.ok(afterRefused.every((o) => o.backend === 'c' || o.backend === 'd'), 'the running set kept serving');
});

t.test('a request in flight on a backend the reload removes finishes there', async (t) => {
  // c,d serve now. Park a request on one of them.
  const client = await rawConnect(t, sluice.port);
  const [c, d] = [backends.get('c')!, backends.get('d')!];
  const parkedBefore = held.length;
  await client.write('GET /hold HTTP/1.1\r\nHost: a\r\n\r\n');
  await until('the request to be parked at c or d', () => held.length > parkedBefore);
  const on = c.requests.at(-1)?.url === '/hold' ? 'c' : 'd';
  t.equal((on === 'c' ? c : d).requests.at(-1)?.url, '/hold', `parked at ${on}`);

  // Replace c,d with e while it is parked.
  writeFileSync(file, `SLUICE_UPSTREAMS=${list('e')}\n`);
  const mark = sluice.logs().length;
  sluice.child.kill('SIGHUP');
  await sluice.waitForLog((l) => l.msg === 'configuration reloaded', 5000, mark);
  for (let i = 0; i < 4; i++) t.equal((await once(sluice.port, '/')).body, 'e', `new request ${i}: served by e`);
  t.notOk(client.closed, 'the parked request’s client connection is still open');

  held.splice(parkedBefore).forEach((release) => release());
  const res = await client.response();
  t.equal(res.status, 200, 'the request in flight completed');
  t.equal(res.body.toString(), `${on} finished`, `on ${on}, the backend it started on`);
  await client.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
  const next = await client.response(res.end);
  t.equal(next.body.toString(), 'e', 'and the same client connection carries on, to the new set');

  t.equal(await sluice.stop(), 0, 'still drains and exits cleanly');
});
