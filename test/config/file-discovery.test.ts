// The discovery keys of a pool in the config file (dns, etcd, file, registry): what they become,
// that `upstreams` may then be left out, and a named error for every mistake (what --check prints).

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigFile } from '../../src/config/file.js';
import { BUILT_CLI, ensureBuilt } from '../helpers/sluice.js';

const ROUTE = `routes:\n  - { match: { path_prefix: / }, pool: api }\n`;

function parse(pool: string) {
  return parseConfigFile(`pools:\n  api: ${pool}\n${ROUTE}`, '/etc/sluice/sluice.yaml', { externalPools: new Set() });
}

function errors(pool: string): string[] {
  const r = parse(pool);
  return r.ok ? [] : r.errors.map((e) => e.message);
}

t.test('each source, as written', async (t) => {
  const r = parse(`{ dns: { name: api.internal, type: srv, min_ttl_s: 2, max_ttl_s: 60 }, etcd: { endpoints: ["http://127.0.0.1:2379/"], prefix: /sluice/services/api/ }, file: api.json }`);
  t.ok(r.ok, JSON.stringify(r.ok ? '' : r.errors.map((e) => e.message)));
  if (!r.ok) return;
  const api = r.content.pools[0]!;
  t.same(api.upstreams, [], 'no upstreams needed with a source');
  t.same(api.discovery, {
    sources: [
      { kind: 'dns', name: 'api.internal', type: 'SRV', port: 0, scheme: 'http:', minTtlMs: 2000, maxTtlMs: 60_000 },
      { kind: 'etcd', endpoints: ['http://127.0.0.1:2379'], prefix: '/sluice/services/api/' },
      { kind: 'file', path: '/etc/sluice/api.json' },
    ],
    registry: true,
  });
  const a = parse(`{ dns: { name: api.internal, port: 8080 } }`);
  t.ok(a.ok);
  if (a.ok) t.same(a.content.pools[0]!.discovery!.sources[0], { kind: 'dns', name: 'api.internal', type: 'A', port: 8080, scheme: 'http:', minTtlMs: 1000, maxTtlMs: 300_000 }, 'A by default; TTL floor 1 s, ceiling 300 s');
  const reg = parse(`{ registry: true }`);
  t.ok(reg.ok);
  if (reg.ok) t.same(reg.content.pools[0]!.discovery, { sources: [], registry: true });
  const off = parse(`{ file: a.json, registry: false }`);
  t.ok(off.ok && off.content.pools[0]!.discovery!.registry === false, 'registry: false turns the API off for a pool with a source');
  const both = parse(`{ upstreams: ["http://10.0.0.1:80"], registry: true }`);
  t.ok(both.ok, 'static upstreams beside the registry');
});

t.test('every mistake named', async (t) => {
  const cases: [string, RegExp][] = [
    [`{ }`, /pools\.api: missing key "upstreams" \(a list of backend URLs\), or a discovery source/],
    [`{ upstreams: [] }`, /pools\.api\.upstreams: at least one upstream URL/],
    [`{ dns: { type: A, port: 80 } }`, /pools\.api\.dns: missing key "name"/],
    [`{ dns: { name: "bad name!", port: 80 } }`, /pools\.api\.dns\.name: "bad name!" is not a DNS name/],
    [`{ dns: { name: a.b, type: MX, port: 80 } }`, /pools\.api\.dns\.type: got "MX", expected A, AAAA or SRV/],
    [`{ dns: { name: a.b, type: A } }`, /pools\.api\.dns: missing key "port" \(A records carry no port\)/],
    [`{ dns: { name: a.b, port: 70000 } }`, /pools\.api\.dns\.port: got 70000, expected a port 1-65535/],
    [`{ dns: { name: a.b, port: 80, scheme: ftp } }`, /pools\.api\.dns\.scheme: got "ftp", expected http or https/],
    [`{ dns: { name: a.b, port: 80, min_ttl_s: 0 } }`, /pools\.api\.dns\.min_ttl_s: got 0, expected seconds from 0.1/],
    [`{ dns: { name: a.b, port: 80, min_ttl_s: 10, max_ttl_s: 5 } }`, /pools\.api\.dns\.min_ttl_s: 10 is above max_ttl_s 5/],
    [`{ dns: { name: a.b, port: 80, ttl: 5 } }`, /pools\.api\.dns: unknown key "ttl"/],
    [`{ etcd: { prefix: /a/ } }`, /pools\.api\.etcd: missing key "endpoints"/],
    [`{ etcd: { endpoints: [], prefix: /a/ } }`, /pools\.api\.etcd\.endpoints: at least one etcd client URL/],
    [`{ etcd: { endpoints: ["127.0.0.1:2379"], prefix: /a/ } }`, /pools\.api\.etcd\.endpoints\[0\]: "127\.0\.0\.1:2379": expected http\(s\):\/\/host:port/],
    [`{ etcd: { endpoints: ["http://127.0.0.1:2379"] } }`, /pools\.api\.etcd: missing key "prefix"/],
    [`{ etcd: { endpoints: ["http://127.0.0.1:2379"], prefix: services } }`, /pools\.api\.etcd\.prefix: "services": expected a key prefix that starts and ends with "\/"/],
    [`{ file: "" }`, /pools\.api\.file: expected the path of a JSON file/],
    [`{ file: 3 }`, /pools\.api\.file: expected a string/],
    [`{ registry: yes }`, /pools\.api\.registry: expected true or false/],
    [`{ registry: false }`, /pools\.api: no backends can reach this pool/],
    [`{ dsn: { name: a.b } }`, /pools\.api: unknown key "dsn" \(did you mean "dns"\?\)/],
  ];
  for (const [pool, expected] of cases) {
    const found = errors(pool);
    t.ok(found.some((e) => expected.test(e)), `${pool} → ${expected} (got ${JSON.stringify(found)})`);
  }
  const srvPort = parse(`{ dns: { name: a.b, type: SRV, port: 80 } }`);
  t.ok(srvPort.ok && srvPort.warnings.some((w) => /SRV records carry their own ports/.test(w)), 'a port beside SRV is a warning');
});

t.test('sluice --check: discovery errors by name, and what each pool discovers', async (t) => {
  await ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-check-discovery-'));
  const check = (yaml: string) => {
    const file = join(dir, `c${Math.random()}.yaml`);
    writeFileSync(file, yaml);
    return spawnSync(process.execPath, [BUILT_CLI, '--check'], { env: { PATH: process.env.PATH, SLUICE_CONFIG: file }, encoding: 'utf8' });
  };
  const ok = check(`pools:\n  api: { etcd: { endpoints: ["http://127.0.0.1:2379"], prefix: /s/api/ }, upstreams: ["http://10.0.0.1:80"] }\n  web: { dns: { name: web.test, port: 80 }, registry: false }\n${ROUTE}`);
  t.equal(ok.status, 0, ok.stderr);
  t.match(ok.stdout, /1 upstream \+ discovered/);
  t.match(ok.stdout, /pools \[api \(1 \+ etcd, registry\), web \(0 \+ dns\)\]/);
  const bad = check(`pools:\n  api: { dns: { name: "x y", type: MX } }\n${ROUTE}`);
  t.equal(bad.status, 1);
  t.match(bad.stderr, /pools\.api\.dns\.name: "x y" is not a DNS name/);
  t.match(bad.stderr, /pools\.api\.dns\.type: got "MX", expected A, AAAA or SRV/);
  t.notMatch(bad.stderr, /no backends can reach/, 'a mistaken source is reported as that mistake only');
});

t.test('sluice --explain names a pool\'s discovery sources', async (t) => {
  await ensureBuilt();
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-explain-discovery-')), 'c.yaml');
  writeFileSync(file, `pools:\n  api: { dns: { name: api.test, port: 80 }, upstreams: ["http://10.0.0.1:80"] }\n${ROUTE}`);
  const r = spawnSync(process.execPath, [BUILT_CLI, '--explain', 'GET', 'http://x/'], { env: { PATH: process.env.PATH, SLUICE_CONFIG: file }, encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /pool api: balancer peak-ewma, http:\/\/10\.0\.0\.1:80, discovered by dns, registered through the API/);
});
