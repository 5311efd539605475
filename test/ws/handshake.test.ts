// The upstream handshake derived from the built request head, the octet rule on it, subprotocol
// offers, sendable close codes, and the configuration of WebSockets (route key and variables).

import t from 'tap';
import { offeredProtocols, sendableCode, upstreamHead } from '../../src/ws/handshake.js';
import { parseConfigFile } from '../../src/config/file.js';
import { parseEnv } from '../../src/config/env.js';
import { compileRoutes } from '../../src/model/index.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { BUILT_CLI, ensureBuilt } from '../helpers/sluice.js';

t.test('the upstream head is the built head minus the WebSocket lines the upstream leg writes itself', async (t) => {
  const head =
    'GET /chat/../r?x=1 HTTP/1.1\r\nhost: a.test\r\norigin: https://a.test\r\ncookie: a=1\r\ncookie: b=2\r\n' +
    'sec-websocket-key: abc\r\nsec-websocket-version: 13\r\nsec-websocket-protocol: chat\r\n' +
    'sec-websocket-extensions: permessage-deflate\r\nx-forwarded-for: 10.0.0.1\r\nx-u: héllo\r\n\r\n';
  const up = upstreamHead(head);
  t.equal(
    up,
    'GET /chat/../r?x=1 HTTP/1.1\r\nhost: a.test\r\norigin: https://a.test\r\ncookie: a=1\r\ncookie: b=2\r\nx-forwarded-for: 10.0.0.1\r\nx-u: héllo\r\n',
    'target as sent, repeated headers kept in order, no blank line (the leg adds its own lines)',
  );
  t.ok(Buffer.from(up, 'utf8').includes(Buffer.from('x-u: h\u00c3\u00a9llo', 'latin1')), 'written as UTF-8: the client\'s octets');
});

t.test('subprotocol offers and sendable close codes', async (t) => {
  t.same(offeredProtocols(''), []);
  t.same(offeredProtocols('chat, superchat,,x'), ['chat', 'superchat', 'x']);
  for (const c of [1000, 1001, 1003, 1007, 1011, 1014, 3000, 4999]) t.ok(sendableCode(c), `${c} may be sent`);
  for (const c of [0, 999, 1004, 1005, 1006, 1015, 2000, 5000]) t.notOk(sendableCode(c), `${c} may not`);
});

t.test('route key websocket: true/false, default true; anything else refused naming the route', async (t) => {
  const ok = parseConfigFile(
    'pools:\n  p: { upstreams: ["http://127.0.0.1:1"] }\nroutes:\n  - { match: { path: /a }, pool: p, websocket: false }\n  - { match: {}, pool: p }\n',
    'sluice.yaml',
    { externalPools: new Set() },
  );
  t.ok(ok.ok);
  if (ok.ok) {
    const table = compileRoutes(ok.content.routes!);
    t.equal(table.routes[0]!.websocket, false);
    t.equal(table.routes[1]!.websocket, true, 'default true');
  }
  const bad = parseConfigFile('pools:\n  p: { upstreams: ["http://127.0.0.1:1"] }\nroutes:\n  - { match: {}, pool: p, websocket: "no" }\n', 'sluice.yaml', {
    externalPools: new Set(),
  });
  t.notOk(bad.ok);
  if (!bad.ok) t.match(bad.errors.map((e) => e.message).join('\n'), /routes\[0\]: websocket: expected true or false/);
});

t.test('SLUICE_WS_* variables: defaults, bounds, keywords', async (t) => {
  const d = parseEnv({});
  t.ok(d.ok);
  if (d.ok) t.match(d.config, { wsMaxBufferBytes: 4194304, wsMaxMessageBytes: 1048576, wsIdleTimeoutMs: 60000, wsCompression: 'off' });
  const set = parseEnv({ SLUICE_WS_COMPRESSION: 'dedicated', SLUICE_WS_IDLE_TIMEOUT_MS: '0', SLUICE_WS_MAX_MESSAGE_BYTES: '125' });
  t.ok(set.ok);
  if (set.ok) t.match(set.config, { wsCompression: 'dedicated', wsIdleTimeoutMs: 0, wsMaxMessageBytes: 125 });
  for (const [name, value] of [
    ['SLUICE_WS_COMPRESSION', 'gzip'],
    ['SLUICE_WS_MAX_BUFFER_BYTES', '100'],
    ['SLUICE_WS_MAX_MESSAGE_BYTES', '124'],
    ['SLUICE_WS_IDLE_TIMEOUT_MS', '-1'],
  ] as const) {
    const r = parseEnv({ [name]: value });
    t.notOk(r.ok, `${name}=${value} refused`);
    if (!r.ok) t.match(r.errors[0]!.message, name);
  }
});

t.test('--explain says when a route refuses WebSockets', async (t) => {
  await ensureBuilt();
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-ws-explain-')), 'sluice.yaml');
  writeFileSync(file, 'pools:\n  p: { upstreams: ["http://127.0.0.1:9"] }\nroutes:\n  - { match: { path: /a }, pool: p, websocket: false }\n  - { match: {}, pool: p }\n');
  const explain = (url: string): string =>
    spawnSync(process.execPath, [BUILT_CLI, '--explain', 'GET', url], { env: { PATH: process.env.PATH, SLUICE_CONFIG: file }, encoding: 'utf8' }).stdout;
  t.match(explain('http://a.test/a'), /^websocket: false \(a WebSocket handshake here gets 403\)$/m);
  t.notMatch(explain('http://a.test/b'), /websocket/);
});
