// SIGHUP on the built proxy under steady GET load: the upstream set is swapped through
// SLUICE_ENV_FILE with zero failed requests and the new set serving within one second; an
// invalid file is refused and the running configuration keeps serving.

import t from 'tap';
import http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, type HttpBackend } from '../helpers/backends.js';
import { ensureBuilt, startSluice } from '../helpers/sluice.js';

interface Outcome {
  started: number;
  ended: number;
  status: number;
  backend: string;
  error: string;
}

/** `concurrency` keep-alive clients sending GET / back to back until stop() resolves. */
function steadyLoad(url: string, concurrency: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const outcomes: Outcome[] = [];
  let running = true;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const started = performance.now();
      const req = http.get(`${url}/`, { agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          outcomes.push({ started, ended: performance.now(), status: res.statusCode ?? 0, backend: Buffer.concat(chunks).toString(), error: '' });
          resolve();
        });
        res.on('error', (err) => {
          outcomes.push({ started, ended: performance.now(), status: 0, backend: '', error: err.message });
          resolve();
        });
      });
      req.on('error', (err) => {
        outcomes.push({ started, ended: performance.now(), status: 0, backend: '', error: err.message });
        resolve();
      });
    });
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) await one();
  });
  return {
    outcomes,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.before(ensureBuilt);

t.test('SIGHUP swaps the upstream set under load without a failed request', async (t) => {
  const named = (name: string) => startBackend(t, (_req, res) => res.end(name));
  const [a, b, c, d] = (await Promise.all(['a', 'b', 'c', 'd'].map(named))) as HttpBackend[];
  const list = (...bs: HttpBackend[]) => bs.map((x) => x.url).join(',');
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-hup-')), 'sluice.env');
  writeFileSync(file, `# the pool\nSLUICE_UPSTREAMS=${list(a!, b!)}\n`);

  const sluice = await startSluice(t, {
    upstreams: [],
    workers: 2,
    // Health checks on (the helper turns them off): the swap then goes through its checked two steps.
    env: { SLUICE_ENV_FILE: file, SLUICE_HEALTH_CHECK: 'on' },
  });
  const load = steadyLoad(sluice.url, 6);
  await sleep(500);

  // Swap a,b → c,d (also a policy change, and one that needs a restart).
  writeFileSync(file, `SLUICE_UPSTREAMS="${list(c!, d!)}"\nSLUICE_BALANCER=round-robin\nSLUICE_LISTEN=127.0.0.1:1\n`);
  let mark = sluice.logs().length;
  const swappedAt = performance.now();
  sluice.child.kill('SIGHUP');
  const reloaded = await sluice.waitForLog((l) => l.msg === 'configuration reloaded', 3000, mark);
  t.same(reloaded.changed, ['SLUICE_UPSTREAMS', 'SLUICE_BALANCER'], 'upstreams and policy changed');
  const upTo = sluice.logs().indexOf(reloaded);
  const checked = sluice.logs().slice(mark, upTo).filter((l) => l.msg === 'new backend passed its first health check');
  t.same(checked.map((l) => l.url).sort(), [c!.url, d!.url].sort(), 'both new backends passed a check before the old ones left');
  t.ok(
    sluice.logs().slice(mark).some((l) => l.msg.includes('only on restart') && JSON.stringify(l.variables) === '["SLUICE_LISTEN"]'),
    'the listen address is logged as needing a restart',
  );
  await sleep(1500);
  const oldServedBefore = a!.requests.length + b!.requests.length;

  // An invalid file: refused, and c,d keep serving.
  writeFileSync(file, `SLUICE_UPSTREAMS=${list(a!)}\nSLUICE_WORKERS=many\n`);
  mark = sluice.logs().length;
  const refusedAt = performance.now();
  sluice.child.kill('SIGHUP');
  const refused = await sluice.waitForLog((l) => l.msg.startsWith('reload refused'), 3000, mark);
  t.match(refused.errors, [/SLUICE_WORKERS="many"/]);
  await sleep(700);
  await load.stop();

  const { outcomes } = load;
  const failed = outcomes.filter((o) => o.status !== 200);
  t.equal(failed.length, 0, `no failed requests out of ${outcomes.length} (${JSON.stringify(failed.slice(0, 3))})`);
  t.ok(outcomes.length > 200, `steady load: ${outcomes.length} requests`);

  const firstNew = outcomes.filter((o) => o.backend === 'c' || o.backend === 'd').sort((x, y) => x.ended - y.ended)[0];
  t.ok(firstNew, 'the new set served');
  t.ok(firstNew!.ended - swappedAt < 1000, `first answer from the new set ${Math.round(firstNew!.ended - swappedAt)} ms after SIGHUP`);
  const late = outcomes.filter((o) => o.started > swappedAt + 1000);
  t.ok(late.length > 50, `${late.length} requests started a second after SIGHUP`);
  t.ok(late.every((o) => o.backend === 'c' || o.backend === 'd'), 'a second after SIGHUP only the new set serves');
  t.ok(outcomes.some((o) => o.backend === 'c') && outcomes.some((o) => o.backend === 'd'), 'both new backends serve');
  t.equal(a!.requests.length + b!.requests.length, oldServedBefore, 'the refused file did not bring a back');
  const afterRefusal = outcomes.filter((o) => o.started > refusedAt);
  t.ok(afterRefusal.length > 20 && afterRefusal.every((o) => o.backend === 'c' || o.backend === 'd'), 'the running set kept serving');

  t.equal(await sluice.stop(), 0, 'still drains and exits cleanly');
});
