// file: discovery through the real proxy. The file is rendered the way tools do it (write a
// temporary file, rename it over the old one) and edited in place; an invalid render keeps the
// last good backends; weights from the file are backend weights.

import t from 'tap';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { until } from '../helpers/wait.js';
import { request, startWithAdmin } from '../admin/admin-helpers.js';

t.test('file source: rename and in-place renders, invalid renders keep the last list', async (t) => {
  const one = await startBackend(t, (_req, res) => res.end('one'));
  const two = await startBackend(t, (_req, res) => res.end('two'));
  const dir = mkdtempSync(join(tmpdir(), 'sluice-file-source-'));
  const file = join(dir, 'api.json');
  const render = (doc: unknown): void => {
    const tmp = join(dir, `.api.json.${Math.random()}`);
    writeFileSync(tmp, typeof doc === 'string' ? doc : JSON.stringify(doc));
    renameSync(tmp, file);
  };
  render([one.url]);
  const { sluice, admin } = await startWithAdmin(t, {
    upstreams: [],
    config: { pools: { api: { file, balancer: 'weighted-round-robin' } }, routes: [{ match: { path_prefix: '/' }, pool: 'api' }] },
  });
  t.equal((await request(sluice.url)).body, 'one', 'the file at start serves');

  render({ backends: [{ url: one.url, weight: 1 }, { url: two.url, weight: 3, zone: 'b' }] });
  await until('the second backend joins', async () => (await request(sluice.url)).body === 'two');
  const counts: Record<string, number> = {};
  for (let i = 0; i < 40; i++) {
    const b = (await request(sluice.url)).body;
    counts[b] = (counts[b] ?? 0) + 1;
  }
  t.same(counts, { one: 10, two: 30 }, 'weights from the file');
  const pools = JSON.parse((await request(`${admin}/api/pools`)).body);
  const api = pools.pools.find((p: { name: string }) => p.name === 'api');
  t.same(api.members.map((m: { source: string }) => m.source), ['file', 'file']);
  t.same(api.discovery.sources, [{ kind: 'file', path: file }]);

  const before = sluice.logs().length;
  render('{ "backends": [ not json');
  await sluice.waitForLog((l) => l.msg === 'discovery file is not valid JSON; keeping the last known backends', 10_000, before);
  render([{ url: 'ftp://nope' }]);
  await sluice.waitForLog((l) => l.msg === 'discovery file has invalid entries; keeping the last known backends', 10_000, before);
  const seen = new Set<string>();
  for (let i = 0; i < 8; i++) seen.add((await request(sluice.url)).body);
  t.same([...seen].sort(), ['one', 'two'], 'both still serve after invalid renders');

  // Edited in place (no rename): one backend left.
  writeFileSync(file, JSON.stringify([two.url]));
  await until('only the second backend serves', async () => {
    const p = JSON.parse((await request(`${admin}/api/pools`)).body);
    return p.pools[0].members.length === 1;
  });
  for (let i = 0; i < 8; i++) t.equal((await request(sluice.url)).body, 'two');

  // SIGHUP with another setting keeps what the source found (the source itself keeps running).
  sluice.writeConfig({ pools: { api: { file, balancer: 'round-robin' } }, routes: [{ match: { path_prefix: '/' }, pool: 'api' }] });
  const reloaded = await sluice.reload();
  t.equal(reloaded.msg, 'configuration reloaded');
  t.same(reloaded.changed, ['pools.api']);
  const after = JSON.parse((await request(`${admin}/api/pools`)).body);
  t.same(after.pools[0].members.map((m: { url: string }) => m.url), [two.url], 'the discovered backend is still the member');
  t.equal(after.pools[0].balancer, 'round-robin');
  render([one.url]);
  await until('the file is still watched after the reload', async () => (await request(sluice.url)).body === 'one');
  t.notOk(sluice.logs().some((l) => l.level >= 50 && l.msg !== 'discovery file is not valid JSON; keeping the last known backends' && l.msg !== 'discovery file has invalid entries; keeping the last known backends'), 'no other error logged');
});
