// L4 configuration: SLUICE_TCP_LISTEN / SLUICE_UDP_LISTEN, the file's listeners: list, tcp:// and
// udp:// upstreams, proxy_protocol, the L4 pool defaults, and `sluice --check` naming each problem.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { EXIT_CONFIG, EXIT_OK, run } from '../../src/cli.js';
import { loadConfig } from '../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-l4-config-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string): string {
  const path = join(dir, `l4-${n++}.yaml`);
  writeFileSync(path, text);
  return path;
}

async function check(env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await run(['--check'], env, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } });
  return { code, stdout, stderr };
}

const ISSUE_EXAMPLE = `
pools:
  pg:  { upstreams: ["tcp://10.0.0.7:5432", "tcp://10.0.0.8:5432"], proxy_protocol: v2 }
  api: { upstreams: ["tcp://10.0.0.5:443"] }
  web: { upstreams: ["tcp://10.0.1.5:443"] }
  dns: { upstreams: ["udp://10.0.0.53:53", "udp://10.0.0.54:53"] }
listeners:
  - { tcp: "0.0.0.0:5432", pool: pg }
  - { tls_passthrough: "0.0.0.0:443", sni: { "api.example.com": api, "*.example.com": web }, default: web }
  - { udp: "0.0.0.0:53", pool: dns }
`;

t.test("the issue's file example loads: listeners, tcp:// and udp:// upstreams, L4 pool defaults", async (t) => {
  const r = await loadConfig({ SLUICE_CONFIG: file(ISSUE_EXAMPLE) });
  if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('\n'));
  const c = r.config;
  t.same(
    c.listeners.map((l) => [l.kind, l.name, l.host, l.port]),
    [
      ['tcp', 'tcp 0.0.0.0:5432', '0.0.0.0', 5432],
      ['tls-passthrough', 'tls 0.0.0.0:443', '0.0.0.0', 443],
      ['udp', 'udp 0.0.0.0:53', '0.0.0.0', 53],
    ],
  );
  t.match(c.listeners[1], { sni: { 'api.example.com': 'api', '*.example.com': 'web' }, defaultPool: 'web', acceptProxy: false, idleTimeoutMs: 600_000 });
  t.equal(c.listeners[2]!.idleTimeoutMs, 60_000, 'UDP sessions: 60 s by default');
  const pool = (name: string) => c.pools.find((p) => p.name === name)!;
  t.equal(pool('pg').proxyProtocol, 'v2');
  t.equal(pool('api').proxyProtocol, undefined);
  t.same(pool('pg').upstreams.map((u) => [u.url, u.protocol, u.host, u.port]), [
    ['tcp://10.0.0.7:5432', 'tcp:', '10.0.0.7', 5432],
    ['tcp://10.0.0.8:5432', 'tcp:', '10.0.0.8', 5432],
  ]);
  t.equal(pool('pg').balancer, 'least-conn', 'an L4 pool defaults to least-conn');
  t.equal(pool('dns').healthCheck, 'off', 'a UDP pool has no TCP check');
  t.equal(pool('pg').healthCheck, 'on');
  t.same(c.routes, [], 'a file of L4 listeners alone has no HTTP routes');
  t.same(r.warnings, [], 'pools used by listeners are not "unused"');

  const withBalancer = await loadConfig({ SLUICE_CONFIG: file(ISSUE_EXAMPLE), SLUICE_BALANCER: 'maglev' });
  t.equal(withBalancer.ok && withBalancer.config.pools[0]!.balancer, 'maglev', 'SLUICE_BALANCER set: it is every pool\'s default');
});

t.test('env form: SLUICE_TCP_LISTEN and SLUICE_UDP_LISTEN, pool "default" when no =>', async (t) => {
  const r = await loadConfig({ SLUICE_UPSTREAMS: 'tcp://10.0.0.7:5432,tcp://[::1]:5433?weight=2', SLUICE_TCP_LISTEN: '0.0.0.0:5432, [::]:15432=>default' });
  if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('\n'));
  t.same(r.config.listeners.map((l) => [l.name, l.kind === 'udp' || l.kind === 'tcp' ? l.pool : '', l.origin]), [
    ['tcp 0.0.0.0:5432', 'default', 'SLUICE_TCP_LISTEN item 1'],
    ['tcp [::]:15432', 'default', 'SLUICE_TCP_LISTEN item 2'],
  ]);
  t.same(r.config.pools[0]!.upstreams.map((u) => [u.url, u.weight]), [['tcp://10.0.0.7:5432', 1], ['tcp://[::1]:5433', 2]]);
  t.equal(r.config.pools[0]!.balancer, 'least-conn');

  const both = await loadConfig({ SLUICE_CONFIG: file(ISSUE_EXAMPLE), SLUICE_TCP_LISTEN: '127.0.0.1:6379=>pg' });
  t.same(both.ok && both.config.listeners.map((l) => l.name), ['tcp 127.0.0.1:6379', 'tcp 0.0.0.0:5432', 'tls 0.0.0.0:443', 'udp 0.0.0.0:53'], 'env listeners first, then the file');

  const http = await loadConfig({ SLUICE_UPSTREAMS: 'http://10.0.0.5:8080', SLUICE_TCP_LISTEN: ':9000' });
  t.equal(http.ok && http.config.pools[0]!.balancer, 'peak-ewma', 'a pool HTTP routes use keeps the HTTP default');
});

t.test('--check: bad L4 variables are named with the item and what was expected', async (t) => {
  const r = await check({
    SLUICE_UPSTREAMS: 'tcp://10.0.0.7',
    SLUICE_TCP_LISTEN: '0.0.0.0:99999,127.0.0.1:5432=>PG',
    SLUICE_UDP_LISTEN: 'nowhere',
    SLUICE_L4_THREADS: '0',
    SLUICE_ACCEPT_PROXY_PROTOCOL: 'maybe',
  });
  t.equal(r.code, EXIT_CONFIG);
  t.match(r.stderr, /SLUICE_UPSTREAMS="tcp:\/\/10\.0\.0\.7" \(item 1\): expected a tcp:\/\/ URL with a port/);
  t.match(r.stderr, /SLUICE_TCP_LISTEN="0\.0\.0\.0:99999" \(item 1\): expected host:port\[=>pool\]/);
  t.match(r.stderr, /SLUICE_TCP_LISTEN="127\.0\.0\.1:5432=>PG" \(item 2\): expected host:port=>pool with a pool name of lower-case/);
  t.match(r.stderr, /SLUICE_UDP_LISTEN="nowhere" \(item 1\)/);
  t.match(r.stderr, /SLUICE_L4_THREADS="0": expected an integer from 1 to 16/);
  t.match(r.stderr, /SLUICE_ACCEPT_PROXY_PROTOCOL="maybe"/);

  for (const [text, value] of [['1', 'all'], ['on', 'all'], ['0', 'off'], ['plain', 'plain'], ['TLS', 'tls']] as const) {
    const c = await loadConfig({ SLUICE_ACCEPT_PROXY_PROTOCOL: text, SLUICE_UPSTREAMS: 'http://10.0.0.5:80' });
    t.equal(c.ok && c.config.acceptProxyProtocol, value, `SLUICE_ACCEPT_PROXY_PROTOCOL=${text}`);
  }

  const pools = await check({ SLUICE_UPSTREAMS: 'tcp://10.0.0.7:5432', SLUICE_TCP_LISTEN: '127.0.0.1:5432=>pg', SLUICE_UDP_LISTEN: '127.0.0.1:53', SLUICE_LISTEN: '127.0.0.1:8080' });
  t.equal(pools.code, EXIT_CONFIG);
  t.match(pools.stderr, /SLUICE_TCP_LISTEN="127\.0\.0\.1:5432=>pg" \(item 1\): expected a pool that exists \(no pool "pg"\)/);
  t.match(pools.stderr, /SLUICE_UDP_LISTEN="127\.0\.0\.1:53=>default" \(item 1\): expected a pool of udp:\/\/ upstreams/);

  const clash = await check({ SLUICE_UPSTREAMS: 'tcp://10.0.0.7:5432', SLUICE_TCP_LISTEN: '127.0.0.1:8080', SLUICE_LISTEN: '0.0.0.0:8080' });
  t.match(clash.stderr, /SLUICE_TCP_LISTEN="127\.0\.0\.1:8080=>default" \(item 1\): expected a free TCP address \(127\.0\.0\.1:8080 is already SLUICE_LISTEN's\)/);
  const sameUdpPort = await check({ SLUICE_UPSTREAMS: 'udp://10.0.0.7:53', SLUICE_UDP_LISTEN: '127.0.0.1:8080', SLUICE_LISTEN: '0.0.0.0:8080' });
  t.equal(sameUdpPort.code, EXIT_OK, 'UDP and TCP may share a port number');

  const ok = await check({ SLUICE_UPSTREAMS: 'tcp://10.0.0.7:5432', SLUICE_TCP_LISTEN: '127.0.0.1:5432', SLUICE_LISTEN: '127.0.0.1:8080' });
  t.equal(ok.code, EXIT_OK);
  t.match(ok.stdout, /L4 tcp 127\.0\.0\.1:5432/);
});

t.test('--check: every problem of the listeners: list, named by position and key', async (t) => {
  const path = file(`
pools:
  pg:  { upstreams: ["tcp://10.0.0.7:5432"], proxy_protocol: v3 }
  dns: { upstreams: ["udp://10.0.0.53:53"] }
  web: { upstreams: ["http://10.0.1.5:80"] }
routes:
  - { match: { path_prefix: / }, pool: dns }
listeners:
  - { tcp: "0.0.0.0:5432", pool: pgg }
  - { tcp: "0.0.0.0:5433" }
  - { tcp: "0.0.0.0:5434", udp: "0.0.0.0:5434", pool: pg }
  - { tcp: "0.0.0.0:99999", pool: pg }
  - { tls_passthrough: "0.0.0.0:443", sni: { "a*.example.com": web, "ok.example.com": nope } }
  - { tls_passthrough: "0.0.0.0:444" }
  - { udp: "0.0.0.0:53", pool: web }
  - { tcp: "0.0.0.0:5435", pool: dns, accept_proxy_protocol: "yes", idle_timeout_ms: -1, colour: red }
  - { tcp: "127.0.0.1:5432", pool: web }
  - "0.0.0.0:1"
`);
  const r = await check({ SLUICE_CONFIG: path, SLUICE_LISTEN: '127.0.0.1:8080' });
  t.equal(r.code, EXIT_CONFIG);
  const lines = r.stderr.trimEnd().split('\n');
  const expect = [
    /pools\.pg\.proxy_protocol: expected v1, v2 or off, got a string \("v3"\)/,
    /listeners\[0\]\.pool: unknown pool "pgg" \(did you mean "pg"\?\)/,
    /listeners\[1\]: missing key "pool"/,
    /listeners\[2\]: one listener is one of tcp, udp, not several/,
    /listeners\[3\]\.tcp: got "0\.0\.0\.0:99999", expected host:port/,
    /listeners\[4\]\.sni\.a\*\.example\.com: expected a server name/,
    /listeners\[4\]\.sni\.ok\.example\.com: unknown pool "nope"/,
    /listeners\[5\]: a TLS passthrough listener needs sni: \{ name: pool \}, default: pool, or both/,
    /listeners\[7\]: unknown key "colour"/,
    /listeners\[7\]\.accept_proxy_protocol: expected true or false/,
    /listeners\[7\]\.idle_timeout_ms: got -1, expected an integer from 0/,
    /listeners\[9\]: expected a map of keys/,
  ];
  for (const re of expect) t.ok(lines.some((l) => re.test(l)), `reported: ${re.source}`);

  // Once the file reads cleanly: listeners against the merged pools and each other.
  const merged = await check({
    SLUICE_LISTEN: '127.0.0.1:8080',
    SLUICE_CONFIG: file(`
pools:
  pg:  { upstreams: ["tcp://10.0.0.7:5432"] }
  dns: { upstreams: ["udp://10.0.0.53:53"] }
  web: { upstreams: ["http://10.0.1.5:80"] }
routes:
  - { match: { path_prefix: / }, pool: dns }
listeners:
  - { tcp: "0.0.0.0:5432", pool: pg }
  - { udp: "0.0.0.0:53", pool: web }
  - { tcp: "127.0.0.1:5432", pool: dns }
`),
  });
  t.equal(merged.code, EXIT_CONFIG);
  const more = merged.stderr.trimEnd().split('\n');
  for (const re of [
    /routes\[0\] \(name "route-0"\): pool "dns" has udp:\/\/ upstreams: it serves UDP listeners only/,
    /listeners\[1\]: expected a pool of udp:\/\/ upstreams \(pool "web" has 1 that are not\)/,
    /listeners\[2\]: .*127\.0\.0\.1:5432 is already listeners\[0\]'s/,
    /listeners\[2\]: .*pool of tcp:\/\/ \(or http:\/\/\) upstreams \(pool "dns" has udp:\/\/ ones\)/,
  ]) {
    t.ok(more.some((l) => re.test(l)), `reported: ${re.source}`);
  }
});

t.test('env listeners on file pools: a file of pools alone serves them (no routes needed, no "unused" warning); SLUICE_TCP_ACCEPT_PROXY_PROTOCOL marks the TCP ones', async (t) => {
  const path = file('pools:\n  pg: { upstreams: ["tcp://10.0.0.7:5432"] }\n  dns: { upstreams: ["udp://10.0.0.53:53"] }\n');
  const r = await loadConfig({ SLUICE_CONFIG: path, SLUICE_TCP_LISTEN: '0.0.0.0:5432=>pg', SLUICE_UDP_LISTEN: '0.0.0.0:53=>dns', SLUICE_TCP_ACCEPT_PROXY_PROTOCOL: '1' });
  t.ok(r.ok, r.ok ? '' : r.errors.map((e) => e.message).join('; '));
  if (!r.ok) return;
  t.same(r.config.routes, [], 'no HTTP routes');
  t.same(r.warnings, [], 'pools the env listeners use are not "unused"');
  t.match(r.config.listeners, [{ kind: 'tcp', pool: 'pg', acceptProxy: true }, { kind: 'udp', pool: 'dns', acceptProxy: false }]);
  const without = await loadConfig({ SLUICE_CONFIG: path });
  t.notOk(without.ok, 'without them the same file still needs routes or a pool "default"');
});
