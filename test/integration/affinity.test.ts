// Affinity on real requests through the proxy: with ring hash (keyed on a header) and Maglev
// (keyed on a cookie), every request with the same key reaches the same backend, whichever of the
// two workers accepts its connection, and the keys spread over the backends. When a backend is
// removed by a reload, ring hash moves only the keys that backend had.
// (Distribution and movement properties are unit-tested in test/balancer/.)

import t, { type Test } from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, startSluice, type Sluice } from '../helpers/sluice.js';
import { startBackend, type HttpBackend } from '../helpers/backends.js';
import { once } from '../helpers/http-once.js';

const KEYS = Array.from({ length: 24 }, (_, i) => `user-${i}`);
/** Requests per key, each on a fresh connection (so the kernel picks a worker for each). */
const REPEATS = 4;

t.before(ensureBuilt);

async function threeBackends(): Promise<HttpBackend[]> {
  return Promise.all(['a', 'b', 'c'].map((name) => startBackend(t, (_req, res) => res.end(name))));
}

/** Which backend answered each key's requests; fails the test when a key got two. */
async function mapKeys(t: Test, sluice: Sluice, headers: (key: string) => Record<string, string>): Promise<Map<string, string>> {
  const owner = new Map<string, string>();
  for (const key of KEYS) {
    const answers = new Set<string>();
    for (let i = 0; i < REPEATS; i++) {
      const res = await once(sluice.port, `/k?i=${i}`, { headers: headers(key) });
      t.equal(res.status, 200);
      answers.add(res.body);
    }
    t.equal(answers.size, 1, `${key}: every request reached ${[...answers].join(' and ')}`);
    owner.set(key, [...answers][0]!);
  }
  return owner;
}

/** The workers that served the access-logged requests: proof that both took part. */
function workersSeen(sluice: Sluice): Set<unknown> {
  return new Set(sluice.logs().filter((l) => l.type === 'access').map((l) => l.worker));
}

t.test('ring hash on a header: same key, same backend, across workers; a removal moves only its keys', async (t) => {
  const [a, b, c] = await threeBackends();
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-ring-')), 'sluice.env');
  writeFileSync(file, `SLUICE_UPSTREAMS=${[a!, b!, c!].map((x) => x.url).join(',')}\n`);
  const sluice = await startSluice(t, {
    upstreams: [],
    workers: 2,
    env: { SLUICE_ENV_FILE: file, SLUICE_BALANCER: 'ring-hash', SLUICE_HASH_KEY: 'header:x-user', SLUICE_ACCESS_LOG: 'on' },
  });
  const before = await mapKeys(t, sluice, (key) => ({ 'x-user': key }));
  const used = new Set(before.values());
  t.ok(used.size >= 2, `the keys spread over ${[...used].join(', ')}`);
  await sluice.waitForLog((l) => l.type === 'access' && l.worker !== sluice.logs().find((x) => x.type === 'access')!.worker);
  t.equal(workersSeen(sluice).size, 2, 'both workers served, and agreed');

  // Remove c: its keys move, every other key stays where it was.
  writeFileSync(file, `SLUICE_UPSTREAMS=${[a!, b!].map((x) => x.url).join(',')}\n`);
  const mark = sluice.logs().length;
  sluice.child.kill('SIGHUP');
  await sluice.waitForLog((l) => l.msg === 'configuration reloaded', 5000, mark);
  const after = await mapKeys(t, sluice, (key) => ({ 'x-user': key }));
  const moved = KEYS.filter((k) => before.get(k) !== after.get(k));
  t.same(
    moved,
    KEYS.filter((k) => before.get(k) === 'c'),
    'exactly the keys that were on c moved',
  );
  t.notOk([...after.values()].includes('c'), 'c gets nothing');
});

t.test('Maglev on a cookie: same key, same backend, across workers', async (t) => {
  const backends = await threeBackends();
  const sluice = await startSluice(t, {
    upstreams: backends.map((x) => x.url),
    workers: 2,
    env: { SLUICE_BALANCER: 'maglev', SLUICE_HASH_KEY: 'cookie:session', SLUICE_ACCESS_LOG: 'on' },
  });
  // The key cookie among others, in varying places: only its value counts.
  const owner = await mapKeys(t, sluice, (key) => ({ cookie: `theme=dark; session=${key}; lang=en` }));
  const used = new Set(owner.values());
  t.ok(used.size >= 2, `the keys spread over ${[...used].join(', ')}`);
  for (const key of KEYS.slice(0, 6)) {
    const res = await once(sluice.port, '/k', { headers: { cookie: `session=${key}` } });
    t.equal(res.body, owner.get(key), `${key}: the same backend with the cookie alone`);
  }
  await sluice.waitForLog((l) => l.type === 'access' && l.worker !== sluice.logs().find((x) => x.type === 'access')!.worker);
  t.equal(workersSeen(sluice).size, 2, 'both workers served, and agreed');
});
