// Where a (re)loaded configuration comes from: the environment with SLUICE_ENV_FILE laid over it,
// including systemd's case, where the file's start-time values are already in the environment.

import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSource } from '../../src/reload/config-source.js';

function tempFile(content: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'sluice-src-')), 'sluice.env');
  writeFileSync(path, content);
  return path;
}

t.test('without a file: the environment alone', async (t) => {
  const r = await new ConfigSource({ SLUICE_WORKERS: '3' }, '').load();
  t.match(r, { ok: true, config: { workers: 3 } });
});

t.test('the file wins over the environment; names it does not set come from the environment', async (t) => {
  const path = tempFile('SLUICE_WORKERS=2\nSLUICE_BALANCER=random\n');
  const r = await new ConfigSource({ SLUICE_WORKERS: '7', SLUICE_LOG_LEVEL: 'warn' }, path).load();
  t.match(r, { ok: true, config: { workers: 2, balancer: 'random', logLevel: 'warn' } });
});

t.test('systemd: a variable deleted from the file returns to its default, not its stale start-time copy', async (t) => {
  const path = tempFile('SLUICE_WORKERS=4\nSLUICE_BALANCER=random\n');
  // EnvironmentFile= copied the file into the environment at start; Environment= set the log level.
  const source = new ConfigSource({ SLUICE_WORKERS: '4', SLUICE_BALANCER: 'random', SLUICE_LOG_LEVEL: 'warn' }, path);
  t.match(await source.load(), { ok: true, config: { workers: 4, balancer: 'random' } });
  writeFileSync(path, 'SLUICE_WORKERS=4\n');
  t.match(await source.load(), { ok: true, config: { workers: 4, balancer: 'peak-ewma', logLevel: 'warn' } });
  writeFileSync(path, 'SLUICE_WORKERS=4\nSLUICE_BALANCER=maglev\n');
  t.match(await source.load(), { ok: true, config: { balancer: 'maglev' } }, 'and can be added back');
});

t.test('a bad file or a bad value is refused with reasons naming file, line and variable', async (t) => {
  const path = tempFile('SLUICE_WORKERS=2\nnot an assignment\n');
  const source = new ConfigSource({}, path);
  t.match(await source.load(), { ok: false, errors: [`${path}:2: expected NAME=value, got "not an assignment"`] });
  writeFileSync(path, 'SLUICE_WORKERS=lots\n');
  t.match(await source.load(), { ok: false, errors: [/^SLUICE_WORKERS="lots": expected an integer from 1 to 64/] });
  t.match(await new ConfigSource({}, `${path}.missing`).load(), { ok: false, errors: [/no such file/] });
});

t.test('warnings: names set twice and unknown SLUICE_ names', async (t) => {
  const path = tempFile('SLUICE_WORKERS=2\nSLUICE_WORKERS=3\nSLUICE_WOKERS=1\n');
  const r = await new ConfigSource({}, path).load();
  t.match(r, { ok: true, config: { workers: 3 } });
  t.match(r.warnings, [`${path}:2: SLUICE_WORKERS is also set on line 1; this later value wins`, /SLUICE_WOKERS .*did you mean SLUICE_WORKERS/]);
});

t.test('SLUICE_CONFIG is read and checked on every load (a SIGHUP with a broken route file is refused)', async (t) => {
  const routes = tempFile('pools:\n  web: { upstreams: ["http://10.0.0.1:80"] }\nroutes:\n  - { match: {}, pool: web }\n');
  const env = tempFile(`SLUICE_CONFIG=${routes}\n`);
  const source = new ConfigSource({}, env);
  const good = await source.load();
  t.match(good, { ok: true, config: { pools: [{ name: 'web' }], routes: [{ match: {}, action: { pool: 'web' } }] } });
  writeFileSync(routes, 'pools:\n  web: { upstreams: ["http://10.0.0.1:80"] }\nroutes:\n  - { match: {}, pool: wbe }\n');
  const bad = await source.load();
  t.equal(bad.ok, false);
  if (!bad.ok) t.match(bad.errors, [/routes\[0\]: unknown pool "wbe"/]);
});
