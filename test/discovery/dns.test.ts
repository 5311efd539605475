// DNS discovery against a hand-built responder on loopback (test/helpers/dns-server.ts): the
// records' TTL drives re-resolution within the floor and ceiling, NXDOMAIN empties a pool while a
// resolver that does not answer keeps the last backends, and SRV priority and weight are used
// (weights as backend weights; the next priority group serves only once the first is down),
// end to end through the real proxy.

import t from 'tap';
import http from 'node:http';
import pino from 'pino';
import { DnsSource } from '../../src/discovery/dns-source.js';
import type { Discovered } from '../../src/discovery/source.js';
import type { DnsDiscovery } from '../../src/model/discovery.js';
import { startDnsServer } from '../helpers/dns-server.js';
import { startBackend } from '../helpers/backends.js';
import { freePort, type Teardown } from '../helpers/sluice.js';
import { until } from '../helpers/wait.js';
import { request, startWithAdmin } from '../admin/admin-helpers.js';

const log = pino({ level: 'silent' });

function spec(over: Partial<DnsDiscovery>): DnsDiscovery {
  return { kind: 'dns', name: 'api.test', type: 'A', port: 8080, scheme: 'http:', minTtlMs: 100, maxTtlMs: 300_000, ...over };
}

/** A DnsSource started on `servers`; its reports land in the returned list. */
function run(t: Teardown, s: DnsDiscovery, server: string): (readonly Discovered[] | null)[] {
  const reports: (readonly Discovered[] | null)[] = [];
  const source = new DnsSource(s, { pool: 'api', log }, { servers: [server] });
  source.start((m) => reports.push(m));
  t.teardown(() => source.stop());
  return reports;
}

const urls = (m: readonly Discovered[] | null | undefined): string[] => (m ?? []).map((d) => d.upstream.url);

t.test('A records: re-resolved after their TTL, never sooner than the floor', async (t) => {
  const dns = await startDnsServer(t, { A: { 'api.test': { addresses: ['10.0.0.1', '10.0.0.2'], ttl: 1 } } });
  const reports = run(t, spec({}), dns.address);
  await until('first answer', () => reports.length >= 1);
  t.same(urls(reports[0]), ['http://10.0.0.1:8080', 'http://10.0.0.2:8080']);
  t.equal(reports[0]![0]!.upstream.source, 'dns');
  dns.zone = { A: { 'api.test': { addresses: ['10.0.0.3'], ttl: 1 } } };
  await until('the change after the TTL', () => urls(reports.at(-1)).join() === 'http://10.0.0.3:8080');
  const asked = dns.questions.filter((q) => q.name === 'api.test');
  t.ok(asked[1]!.at - asked[0]!.at >= 950, `asked again no sooner than the 1 s TTL (${asked[1]!.at - asked[0]!.at} ms)`);
});

t.test('TTL 0 (Consul) is held to the floor; a day-long TTL to the ceiling', async (t) => {
  const dns = await startDnsServer(t, {
    A: { 'zero.test': { addresses: ['10.0.0.1'], ttl: 0 }, 'day.test': { addresses: ['10.0.0.1'], ttl: 86_400 } },
  });
  run(t, spec({ name: 'zero.test', minTtlMs: 500 }), dns.address);
  run(t, spec({ name: 'day.test', maxTtlMs: 300 }), dns.address);
  await until('zero.test asked three times', () => dns.questions.filter((q) => q.name === 'zero.test').length >= 3);
  const zero = dns.questions.filter((q) => q.name === 'zero.test');
  for (let i = 1; i < zero.length; i++) t.ok(zero[i]!.at - zero[i - 1]!.at >= 450, `TTL 0 waits the 500 ms floor (${zero[i]!.at - zero[i - 1]!.at} ms)`);
  await until('day.test asked again within its 300 ms ceiling', () => dns.questions.filter((q) => q.name === 'day.test').length >= 3);
  t.pass('a day-long TTL is re-resolved at the ceiling');
});

t.test('AAAA records', async (t) => {
  const dns = await startDnsServer(t, { AAAA: { 'v6.test': { addresses: ['fd00::1', '::1'], ttl: 30 } } });
  const reports = run(t, spec({ name: 'v6.test', type: 'AAAA', port: 9000 }), dns.address);
  await until('first answer', () => reports.length >= 1);
  t.same(urls(reports[0]), ['http://[::1]:9000', 'http://[fd00::1]:9000']);
  t.equal(reports[0]![0]!.upstream.host, '::1', 'host is bare, ready for a connect');
});

t.test('NXDOMAIN empties; a resolver that does not answer keeps the last list', async (t) => {
  const dns = await startDnsServer(t, { A: { 'api.test': { addresses: ['10.0.0.1'], ttl: 1 } } });
  const reports = run(t, spec({ minTtlMs: 100, maxTtlMs: 1000 }), dns.address);
  await until('first answer', () => reports.length >= 1);
  dns.silent = true;
  await until('a failed round', () => reports.at(-1) === null, 15_000);
  t.equal(reports.filter((r) => r !== null && r.length === 0).length, 0, 'a silent resolver never empties the pool');
  dns.silent = false;
  dns.zone = {};
  await until('NXDOMAIN reported as no backends', () => reports.at(-1)?.length === 0, 15_000);
});

t.test('SRV: targets resolved, weights as backend weights, priorities as groups', async (t) => {
  const dns = await startDnsServer(t, {
    SRV: {
      '_http._tcp.api.test': {
        ttl: 30,
        records: [
          { priority: 10, weight: 3, port: 8001, target: 'a.test' },
          { priority: 10, weight: 0, port: 8002, target: 'b.test' },
          { priority: 20, weight: 1, port: 8003, target: 'c.test' },
        ],
      },
    },
    A: { 'a.test': { addresses: ['10.0.0.1'], ttl: 30 }, 'b.test': { addresses: ['10.0.0.2'], ttl: 30 } },
    AAAA: { 'c.test': { addresses: ['fd00::3'], ttl: 30 } },
  });
  const reports = run(t, spec({ name: '_http._tcp.api.test', type: 'SRV', port: 0 }), dns.address);
  await until('first answer', () => reports.length >= 1);
  const got = (reports[0] ?? []).map((d) => [d.upstream.url, d.upstream.weight, d.priority]);
  t.same(got, [
    ['http://10.0.0.1:8001', 3, 10],
    ['http://10.0.0.2:8002', 0.01, 10],
    ['http://[fd00::3]:8003', 1, 20],
  ], 'weight 0 is the smallest weight, an AAAA-only target resolves over IPv6');
});

/** An HTTP server on `host:port` answering its own name. */
async function named(t: Teardown, host: string, port: number, label: string): Promise<http.Server> {
  const server = http.createServer((_req, res) => res.end(label));
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return server;
}

t.test('through the proxy: A re-resolution moves traffic, SRV weights and priority failover', async (t) => {
  // Two addresses on one port (127.0.0.2 and .3 are loopback too) for the A records.
  const port = await freePort();
  await named(t, '127.0.0.2', port, 'two');
  await named(t, '127.0.0.3', port, 'three');
  const a = await startBackend(t, (_req, res) => res.end('a'));
  const b = await startBackend(t, (_req, res) => res.end('b'));
  const c = await startBackend(t, (_req, res) => res.end('c'));
  const dns = await startDnsServer(t, {
    A: { 'web.test': { addresses: ['127.0.0.2'], ttl: 1 }, 'a.test': { addresses: ['127.0.0.1'], ttl: 60 }, 'b.test': { addresses: ['127.0.0.1'], ttl: 60 }, 'c.test': { addresses: ['127.0.0.1'], ttl: 60 } },
    SRV: {
      '_http._tcp.api.test': {
        ttl: 60,
        records: [
          { priority: 1, weight: 3, port: a.port, target: 'a.test' },
          { priority: 1, weight: 1, port: b.port, target: 'b.test' },
          { priority: 2, weight: 1, port: c.port, target: 'c.test' },
        ],
      },
    },
  });
  const { sluice, admin } = await startWithAdmin(t, {
    upstreams: [],
    env: { SLUICE_DNS_SERVERS: dns.address },
    config: {
      pools: {
        web: { dns: { name: 'web.test', type: 'A', port, min_ttl_s: 0.2 } },
        api: {
          dns: { name: '_http._tcp.api.test', type: 'SRV' },
          balancer: 'weighted-round-robin',
          health: { enabled: true, interval_ms: 200, timeout_ms: 500, unhealthy_threshold: 1 },
        },
      },
      routes: [
        { match: { path_prefix: '/web' }, pool: 'web' },
        { match: { path_prefix: '/' }, pool: 'api' },
      ],
    },
  });

  // A: the first answer serves; a new answer after the TTL moves traffic, with no failed request.
  t.equal((await request(`${sluice.url}/web`)).body, 'two');
  dns.zone.A!['web.test'] = { addresses: ['127.0.0.3'], ttl: 1 };
  let failed = 0;
  await until('traffic on the new address', async () => {
    const r = await request(`${sluice.url}/web`);
    if (r.status !== 200) failed++;
    return r.body === 'three';
  });
  t.equal(failed, 0, 'no request failed while the address changed');

  // SRV: priority 1 only, split 3:1 by weight.
  await until('both priority-1 targets healthy', async () => {
    const p = JSON.parse((await request(`${admin}/api/pools`)).body);
    const api = p.pools.find((x: { name: string }) => x.name === 'api');
    return api.backends.available === 2;
  });
  const seen: Record<string, number> = {};
  for (let i = 0; i < 40; i++) {
    const body = (await request(`${sluice.url}/`)).body;
    seen[body] = (seen[body] ?? 0) + 1;
  }
  t.same(seen, { a: 30, b: 10 }, 'weights 3 and 1; the priority-2 target gets nothing');
  const pools = JSON.parse((await request(`${admin}/api/pools`)).body);
  const members = pools.pools.find((x: { name: string }) => x.name === 'api').members;
  t.same(members.map((m: { source: string }) => m.source), ['dns', 'dns'], 'the priority-2 target is not a member while priority 1 is up');

  // Priority 1 goes down: the priority-2 group joins and serves.
  await a.close();
  await b.close();
  await until('the priority-2 target serves', async () => (await request(`${sluice.url}/`)).body === 'c', 15_000);
  t.ok(sluice.logs().some((l) => l.msg === 'membership changed'), 'logged as a membership change');
  t.ok(((sluice.logs().find((l) => l.msg === 'membership changed' && JSON.stringify(l.added).includes(String(c.port))) ?? {}) as { added?: string[] }).added, 'the c target was added');
});
