// SLUICE_ADMIN_LISTEN, SLUICE_ADMIN_TOKEN, SLUICE_ACCESS_LOG through parseEnv, and the rule that
// an admin listener other hosts can reach needs a token.

import t from 'tap';
import { parseEnv } from '../../src/config/env.js';
import type { Config } from '../../src/config/types.js';
import { isLoopbackHost } from '../../src/admin/value-parsers.js';

const TOKEN = 'abcdefghijklmnop';

function ok(env: Record<string, string>): Config {
  const r = parseEnv(env);
  if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('\n'));
  return r.config;
}

function errors(env: Record<string, string>): string[] {
  const r = parseEnv(env);
  return r.ok ? [] : r.errors.map((e) => e.message);
}

t.test('defaults', async (t) => {
  const c = ok({});
  t.same(c.adminListen, { host: '127.0.0.1', port: 9901 });
  t.equal(c.adminToken, '');
  t.equal(c.accessLog, 0);
});

t.test('SLUICE_ACCESS_LOG', async (t) => {
  t.equal(ok({ SLUICE_ACCESS_LOG: 'on' }).accessLog, 1);
  t.equal(ok({ SLUICE_ACCESS_LOG: 'OFF' }).accessLog, 0);
  t.equal(ok({ SLUICE_ACCESS_LOG: '0.01' }).accessLog, 0.01);
  t.equal(ok({ SLUICE_ACCESS_LOG: '1' }).accessLog, 1);
  for (const bad of ['2', '-0.1', 'yes', '1e-2']) {
    t.match(errors({ SLUICE_ACCESS_LOG: bad }), [/^SLUICE_ACCESS_LOG=.*expected a number from 0 to 1, or "on", or "off"/], bad);
  }
});

t.test('SLUICE_ADMIN_LISTEN', async (t) => {
  t.equal(ok({ SLUICE_ADMIN_LISTEN: 'off' }).adminListen, null);
  t.same(ok({ SLUICE_ADMIN_LISTEN: '[::1]:9000' }).adminListen, { host: '::1', port: 9000 });
  t.same(ok({ SLUICE_ADMIN_LISTEN: 'localhost:9000' }).adminListen, { host: 'localhost', port: 9000 });
  t.match(errors({ SLUICE_ADMIN_LISTEN: 'nope' }), [/^SLUICE_ADMIN_LISTEN="nope": expected host:port/]);
});

t.test('a reachable admin listener needs a token', async (t) => {
  for (const listen of ['0.0.0.0:9901', ':9901', '10.1.2.3:9901', '[::]:9901', 'admin.example:9901']) {
    t.match(errors({ SLUICE_ADMIN_LISTEN: listen }), [/^SLUICE_ADMIN_TOKEN="": expected a token, because SLUICE_ADMIN_LISTEN/], listen);
    t.same(ok({ SLUICE_ADMIN_LISTEN: listen, SLUICE_ADMIN_TOKEN: TOKEN }).adminToken, TOKEN);
  }
  for (const listen of ['127.0.0.1:1', '127.9.9.9:1', '[::1]:1', 'localhost:1', 'off']) {
    t.same(errors({ SLUICE_ADMIN_LISTEN: listen }), [], `${listen} needs no token`);
  }
  const both = errors({ SLUICE_ADMIN_LISTEN: '0.0.0.0:9901', SLUICE_WORKERS: 'many' });
  t.equal(both.length, 2, 'reported together with other bad variables');
});

t.test('SLUICE_ADMIN_TOKEN is checked and never echoed', async (t) => {
  t.equal(ok({ SLUICE_ADMIN_TOKEN: 'A-b_c.d~e+f/g0123==' }).adminToken, 'A-b_c.d~e+f/g0123==');
  for (const bad of ['short', 'has spaces in the middle!!', 'x'.repeat(1025), 'quote"quote"quote"quote']) {
    const e = errors({ SLUICE_ADMIN_TOKEN: bad });
    t.equal(e.length, 1);
    t.match(e[0], /^SLUICE_ADMIN_TOKEN="\(hidden\)": expected a token/);
    t.notMatch(e[0], bad);
  }
});

t.test('isLoopbackHost', async (t) => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) t.ok(isLoopbackHost(h), h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'localhost.example', '::ffff:10.0.0.1', '']) t.notOk(isLoopbackHost(h), h);
});
