// parseEnv: defaults, good and bad values for every variable, errors collected together, warnings
// for unknown SLUICE_* names, and the docs table kept in step with the variable table.

import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { ConfigError, parseEnv } from '../../src/config/env.js';
import type { Config } from '../../src/config/types.js';
import { BALANCERS, LOG_LEVELS, VARIABLE_SPECS } from '../../src/config/variables.js';

/** Parses one variable alone and returns its field, failing the test on any error. */
function good(variable: string, value: string): unknown {
  const result = parseEnv({ [variable]: value });
  if (!result.ok) throw new Error(`unexpected errors: ${result.errors.map((e) => e.message).join('; ')}`);
  const spec = VARIABLE_SPECS.find((s) => s.name === variable);
  if (spec === undefined) throw new Error(`no spec for ${variable}`);
  return result.config[spec.key];
}

/** Parses one variable alone and returns its errors (there must be some). */
function bad(variable: string, value: string): ConfigError[] {
  const result = parseEnv({ [variable]: value });
  if (result.ok) throw new Error(`${variable}=${JSON.stringify(value)} was accepted`);
  return result.errors;
}

/** Each bad value yields errors that all name the variable, quote a value and say what is expected. */
function rejects(t: Test, variable: string, values: string[], fragment?: RegExp): void {
  for (const value of values) {
    const errors = bad(variable, value);
    t.ok(errors.length >= 1, `${variable}=${JSON.stringify(value)} rejected`);
    for (const error of errors) {
      t.equal(error.variable, variable);
      t.match(error.message, new RegExp(`^${variable}=".*"( \\(item \\d+\\))?: expected `), error.message);
      if (fragment !== undefined) t.match(error.message, fragment);
    }
  }
}

import { DEFAULT_CIPHERS } from '../../src/tls/ciphers.js';

const DEFAULTS: Config = {
  listen: { host: '0.0.0.0', port: 8080 },
  upstreams: [],
  workers: Math.min(availableParallelism(), 64),
  balancer: 'peak-ewma',
  connectTimeoutMs: 5000,
  requestTimeoutMs: 15000,
  idleTimeoutMs: 10000,
  maxHeaderBytes: 16384,
  maxBodyBytes: 0,
  upstreamConnections: 128,
  drainTimeoutMs: 30000,
  logLevel: 'info',
  accessLog: 0,
  adminListen: { host: '127.0.0.1', port: 9901 },
  adminToken: '',
  trustedProxies: [],
  dnsServers: [],
  leastRequestBias: 1,
  ewmaDecayMs: 10000,
  ewmaDefaultRttMs: 30,
  panicThresholdPercent: 50,
  slowStartMs: 0,
  hashKey: { kind: 'ip' },
  maglevTableSize: 65537,
  tlsListen: null,
  tlsCert: '',
  tlsKey: '',
  tlsKeyPassphrase: '',
  tlsCertsDir: '',
  tlsCiphers: DEFAULT_CIPHERS,
  redirectHttps: false,
  hstsMaxAge: 0,
  upstreamCa: '',
  upstreamInsecure: false,
  healthCheck: 'on',
  healthPath: '',
  healthExpect: [{ from: 200, to: 299 }],
  healthIntervalMs: 2000,
  healthTimeoutMs: 1000,
  healthyThreshold: 2,
  unhealthyThreshold: 3,
  outlierConsecutive5xx: 5,
  outlierConsecutiveFailures: 5,
  outlierBaseEjectionMs: 30000,
  outlierMaxEjectionMs: 300000,
  outlierMaxEjectionPercent: 10,
  retries: 1,
  retryBudgetPercent: 20,
  maxRequestsPerBackend: 0,
  upstreamPipeline: 16,
  upstreamPipelineHolMs: 20,
  envFile: '',
  configFile: '',
  wsMaxBufferBytes: 4_194_304,
  wsMaxMessageBytes: 1_048_576,
  wsIdleTimeoutMs: 60_000,
  wsCompression: 'off',
  tcpListen: [],
  udpListen: [],
  tcpAcceptProxy: false,
  l4Threads: 1,
  l4YoungGenerationMb: 4,
  acceptProxyProtocol: 'off',
};

t.test('an empty environment gives every default', async (t) => {
  const result = parseEnv({});
  t.ok(result.ok);
  if (result.ok) t.same(result.config, DEFAULTS);
  t.same(result.warnings, []);
});

t.test('unset, empty and blank all mean the default; values are trimmed', async (t) => {
  t.equal(good('SLUICE_CONNECT_TIMEOUT_MS', ''), 5000);
  t.equal(good('SLUICE_CONNECT_TIMEOUT_MS', '   '), 5000);
  t.equal(good('SLUICE_CONNECT_TIMEOUT_MS', ' 250\n'), 250);
});

t.test('the variable table is well formed', async (t) => {
  const names = VARIABLE_SPECS.map((s) => s.name);
  t.equal(new Set(names).size, names.length, 'names are unique');
  t.same(VARIABLE_SPECS.map((s) => s.key).sort(), Object.keys(DEFAULTS).sort(), 'one variable per Config field');
  for (const spec of VARIABLE_SPECS) {
    t.match(spec.name, /^SLUICE_[A-Z0-9_]+$/);
    t.ok(spec.doc.length > 10, `${spec.name} is documented`);
    t.ok(spec.parse(spec.default).ok, `${spec.name} default parses`);
  }
});

t.test('docs/configuration.md lists every variable with its default', async (t) => {
  const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  for (const spec of VARIABLE_SPECS) {
    const row = doc.split('\n').find((line) => line.startsWith(`| \`${spec.name}\` |`));
    t.ok(row, `${spec.name} has a row`);
    const shown = spec.default === '' ? '(empty)' : `\`${spec.default}\``;
    t.ok(row?.includes(`| ${shown} |`), `${spec.name} row shows default ${shown}`);
  }
});

t.test('SLUICE_TCP_ACCEPT_PROXY_PROTOCOL', async (t) => {
  t.equal(good('SLUICE_TCP_ACCEPT_PROXY_PROTOCOL', '1'), true);
  t.equal(good('SLUICE_TCP_ACCEPT_PROXY_PROTOCOL', 'off'), false);
  rejects(t, 'SLUICE_TCP_ACCEPT_PROXY_PROTOCOL', ['v2', '2']);
});

t.test('SLUICE_LISTEN', async (t) => {
  t.same(good('SLUICE_LISTEN', '127.0.0.1:9000'), { host: '127.0.0.1', port: 9000 });
  t.same(good('SLUICE_LISTEN', '[::]:8080'), { host: '::', port: 8080 });
  t.same(good('SLUICE_LISTEN', '[::1]:1'), { host: '::1', port: 1 });
  t.same(good('SLUICE_LISTEN', ':8080'), { host: '0.0.0.0', port: 8080 });
  t.equal(good('SLUICE_LISTEN', 'off'), null, 'off: no plain HTTP listener');
  t.equal(good('SLUICE_LISTEN', 'OFF'), null);
  t.same(good('SLUICE_LISTEN', '8081'), { host: '0.0.0.0', port: 8081 });
  t.same(good('SLUICE_LISTEN', 'localhost:65535'), { host: 'localhost', port: 65535 });
  rejects(t, 'SLUICE_LISTEN', ['0.0.0.0:0', ':65536', '0.0.0.0:80x', 'host', '[::1]8080', '[::1', 'bad_host!:80']);
  rejects(t, 'SLUICE_LISTEN', ['300.1.1.1:80'], /not an IP address or host name/);
  rejects(t, 'SLUICE_LISTEN', ['::1:8080'], /IPv6 address in brackets/);
  rejects(t, 'SLUICE_LISTEN', ['[example.com]:80'], /IPv6 address inside the brackets/);
});

t.test('SLUICE_UPSTREAMS: forms, default ports and normalisation', async (t) => {
  t.same(good('SLUICE_UPSTREAMS', ''), []);
  t.same(good('SLUICE_UPSTREAMS', 'http://10.0.0.5:8080'), [
    { url: 'http://10.0.0.5:8080', protocol: 'http:', host: '10.0.0.5', port: 8080, weight: 1 },
  ]);
  t.same(good('SLUICE_UPSTREAMS', 'http://a, https://B.example/ ,HTTP://c:80,'), [
    { url: 'http://a:80', protocol: 'http:', host: 'a', port: 80, weight: 1 },
    { url: 'https://b.example:443', protocol: 'https:', host: 'b.example', port: 443, weight: 1 },
    { url: 'http://c:80', protocol: 'http:', host: 'c', port: 80, weight: 1 },
  ]);
  t.same(good('SLUICE_UPSTREAMS', 'https://[::1]:8443'), [
    { url: 'https://[::1]:8443', protocol: 'https:', host: '::1', port: 8443, weight: 1 },
  ]);
});

t.test('SLUICE_UPSTREAMS: weights', async (t) => {
  const weights = (value: string) => (good('SLUICE_UPSTREAMS', value) as Config['upstreams']).map((u) => u.weight);
  t.same(weights('http://a?weight=3,http://b:81/?weight=0.25,http://c'), [3, 0.25, 1]);
  t.same(weights('http://a?weight=1000,http://b?weight=.5'), [1000, 0.5]);
  rejects(
    t,
    'SLUICE_UPSTREAMS',
    ['http://a?weight=0', 'http://a?weight=-1', 'http://a?weight=1001', 'http://a?weight=abc', 'http://a?weight='],
    /weight= to be a number > 0 and <= 1000/,
  );
  rejects(t, 'SLUICE_UPSTREAMS', ['http://a?weight=1&weight=2', 'http://a?w=2', 'http://a?weight=1&x=1'], /only|query/);
});

t.test('SLUICE_UPSTREAMS: bad entries, each reported with its position', async (t) => {
  rejects(t, 'SLUICE_UPSTREAMS', ['ftp://a', '10.0.0.5:8080', 'localhost'], /http:\/\/ or https:\/\/ URL/);
  rejects(t, 'SLUICE_UPSTREAMS', ['http://a/api'], /without a path \(got "\/api"\)/);
  rejects(t, 'SLUICE_UPSTREAMS', ['http://user:pw@a'], /user:password/);
  rejects(t, 'SLUICE_UPSTREAMS', ['http://a#x'], /fragment/);
  rejects(t, 'SLUICE_UPSTREAMS', ['http://a:99999', 'http://a b', 'http://[::1:80'], /valid URL/);
  rejects(t, 'SLUICE_UPSTREAMS', ['http://a:0'], /port from 1 to 65535/);

  const errors = bad('SLUICE_UPSTREAMS', 'http://ok, ftp://x, http://ok2, http://y/z');
  t.same(
    errors.map((e) => [e.item, e.value]),
    [
      [2, 'ftp://x'],
      [4, 'http://y/z'],
    ],
    'every bad item, not just the first',
  );
  t.match(errors[0]?.message, /^SLUICE_UPSTREAMS="ftp:\/\/x" \(item 2\): expected /);
});

t.test('SLUICE_UPSTREAMS: duplicates and the 1024 limit', async (t) => {
  const dup = bad('SLUICE_UPSTREAMS', 'http://a, http://b, http://a:80?weight=2');
  t.equal(dup.length, 1);
  t.match(dup[0]?.message, /\(item 3\): expected each item once \(item 1 is the same\)/);
  t.same(bad('SLUICE_UPSTREAMS', 'https://a:443,https://a').map((e) => e.item), [2]);
  t.equal((good('SLUICE_UPSTREAMS', 'http://a,https://a') as unknown[]).length, 2, 'scheme is part of identity');

  const many = (n: number) => Array.from({ length: n }, (_, i) => `http://10.0.${i >> 8}.${i & 255}:80`).join(',');
  t.equal((good('SLUICE_UPSTREAMS', many(1024)) as unknown[]).length, 1024);
  const tooMany = bad('SLUICE_UPSTREAMS', many(1025));
  t.equal(tooMany.length, 1);
  t.match(tooMany[0]?.message, /expected at most 1024 comma-separated items \(got 1025\)/);
  t.ok(tooMany[0]!.message.length < 300, 'a huge value is cut short in the message');
});

t.test('SLUICE_WORKERS', async (t) => {
  t.equal(good('SLUICE_WORKERS', '1'), 1);
  t.equal(good('SLUICE_WORKERS', '64'), 64);
  t.equal(good('SLUICE_WORKERS', '08'), 8);
  t.equal(good('SLUICE_WORKERS', 'auto'), DEFAULTS.workers);
  t.equal(good('SLUICE_WORKERS', 'AUTO'), DEFAULTS.workers);
  rejects(t, 'SLUICE_WORKERS', ['0', '65', '-1', '1.5', 'abc', '1e1', '0x4', ' 4 4'], /integer from 1 to 64, or "auto"/);
  t.equal(bad('SLUICE_WORKERS', 'abc')[0]?.message, 'SLUICE_WORKERS="abc": expected an integer from 1 to 64, or "auto"');
});

t.test('SLUICE_L4_YOUNG_GENERATION_MB', async (t) => {
  t.equal(good('SLUICE_L4_YOUNG_GENERATION_MB', '0'), 0);
  t.equal(good('SLUICE_L4_YOUNG_GENERATION_MB', '2'), 2);
  t.equal(good('SLUICE_L4_YOUNG_GENERATION_MB', '64'), 64);
  rejects(t, 'SLUICE_L4_YOUNG_GENERATION_MB', ['-1', '65', '1.5', 'auto', '4m'], /integer from 0 to 64/);
});

t.test('SLUICE_BALANCER', async (t) => {
  for (const name of BALANCERS) t.equal(good('SLUICE_BALANCER', name), name);
  t.equal(good('SLUICE_BALANCER', 'Round-Robin'), 'round-robin');
  rejects(t, 'SLUICE_BALANCER', ['fastest', 'round_robin', 'ewma'], /one of round-robin, .*maglev$/);
});

t.test('timeouts: integers from 1 (drain: 0) to 3600000', async (t) => {
  const positive = ['SLUICE_CONNECT_TIMEOUT_MS', 'SLUICE_REQUEST_TIMEOUT_MS', 'SLUICE_IDLE_TIMEOUT_MS', 'SLUICE_EWMA_DECAY_MS'];
  for (const name of positive) {
    t.equal(good(name, '1'), 1);
    t.equal(good(name, '3600000'), 3_600_000);
    rejects(t, name, ['0', '3600001', '-5', '1.5', '5s', '1e3', '0x10', 'Infinity'], /integer from 1 to 3600000/);
  }
  for (const name of ['SLUICE_DRAIN_TIMEOUT_MS', 'SLUICE_SLOW_START_MS']) {
    t.equal(good(name, '0'), 0);
    t.equal(good(name, '3600000'), 3_600_000);
    rejects(t, name, ['3600001', '-1', 'soon'], /integer from 0 to 3600000/);
  }
});

t.test('size limits', async (t) => {
  t.equal(good('SLUICE_MAX_HEADER_BYTES', '1024'), 1024);
  t.equal(good('SLUICE_MAX_HEADER_BYTES', '1048576'), 1_048_576);
  rejects(t, 'SLUICE_MAX_HEADER_BYTES', ['1023', '1048577', '16k'], /integer from 1024 to 1048576/);
  t.equal(good('SLUICE_MAX_BODY_BYTES', '0'), 0);
  t.equal(good('SLUICE_MAX_BODY_BYTES', '10737418240'), 10_737_418_240);
  rejects(t, 'SLUICE_MAX_BODY_BYTES', ['-1', '1.5', '10mb', '99999999999999999999'], /integer >= 0$/);
  t.equal(good('SLUICE_UPSTREAM_CONNECTIONS', '1'), 1);
  t.equal(good('SLUICE_UPSTREAM_CONNECTIONS', '65536'), 65_536);
  rejects(t, 'SLUICE_UPSTREAM_CONNECTIONS', ['0', '65537'], /integer from 1 to 65536/);
});

t.test('SLUICE_LOG_LEVEL', async (t) => {
  for (const level of LOG_LEVELS) t.equal(good('SLUICE_LOG_LEVEL', level), level);
  t.equal(good('SLUICE_LOG_LEVEL', 'DEBUG'), 'debug');
  rejects(t, 'SLUICE_LOG_LEVEL', ['verbose', '3'], /one of fatal, error, warn, info, debug, trace, silent/);
});

t.test('SLUICE_TRUSTED_PROXIES', async (t) => {
  t.same(good('SLUICE_TRUSTED_PROXIES', ''), []);
  t.same(good('SLUICE_TRUSTED_PROXIES', '10.0.0.1, ::1,0:0:0:0:0:0:0:2,FE80::A'), ['10.0.0.1', '::1', '::2', 'fe80::a']);
  rejects(t, 'SLUICE_TRUSTED_PROXIES', ['10.0.0.0/8'], /CIDR ranges are not supported/);
  rejects(t, 'SLUICE_TRUSTED_PROXIES', ['example.com', '999.1.1.1', '10.0.0.1,nope'], /IPv4 or IPv6 address/);
  t.equal(bad('SLUICE_TRUSTED_PROXIES', '10.0.0.1,nope')[0]?.item, 2);
});

t.test('balancing knobs', async (t) => {
  t.equal(good('SLUICE_LEAST_REQUEST_BIAS', '0'), 0);
  t.equal(good('SLUICE_LEAST_REQUEST_BIAS', '1.5'), 1.5);
  rejects(t, 'SLUICE_LEAST_REQUEST_BIAS', ['-1', '101', 'abc', 'NaN', 'Infinity', '1.2.3'], /number from 0 to 100/);

  t.equal(good('SLUICE_EWMA_DEFAULT_RTT_MS', '0.5'), 0.5);
  t.equal(good('SLUICE_EWMA_DEFAULT_RTT_MS', '30'), 30);
  rejects(t, 'SLUICE_EWMA_DEFAULT_RTT_MS', ['0', '0.0', '-3', 'x'], /number > 0 and <= 3600000/);

  t.equal(good('SLUICE_PANIC_THRESHOLD_PERCENT', '0'), 0);
  t.equal(good('SLUICE_PANIC_THRESHOLD_PERCENT', '100'), 100);
  t.equal(good('SLUICE_PANIC_THRESHOLD_PERCENT', '12.5'), 12.5);
  rejects(t, 'SLUICE_PANIC_THRESHOLD_PERCENT', ['101', '-1', '50%'], /number from 0 to 100/);
});

t.test('SLUICE_HASH_KEY', async (t) => {
  t.same(good('SLUICE_HASH_KEY', 'ip'), { kind: 'ip' });
  t.same(good('SLUICE_HASH_KEY', 'IP'), { kind: 'ip' });
  t.same(good('SLUICE_HASH_KEY', 'header:X-User-Id'), { kind: 'header', name: 'x-user-id' });
  t.same(good('SLUICE_HASH_KEY', 'Cookie:SessionID'), { kind: 'cookie', name: 'SessionID' });
  rejects(
    t,
    'SLUICE_HASH_KEY',
    ['header:', 'header:bad name', 'cookie:a;b', 'query:id', 'user', 'header:a:b'],
    /"ip", "header:<name>" or "cookie:<name>"/,
  );
});

t.test('SLUICE_MAGLEV_TABLE_SIZE', async (t) => {
  for (const n of ['7', '251', '65537', '1000003']) t.equal(good('SLUICE_MAGLEV_TABLE_SIZE', n), Number(n));
  rejects(t, 'SLUICE_MAGLEV_TABLE_SIZE', ['6', '1000033', 'abc', '9'], /prime number from 7 to 1000003/);
  t.match(bad('SLUICE_MAGLEV_TABLE_SIZE', '65536')[0]?.message, /next prime up: 65537/);
});

t.test('several bad variables are reported together', async (t) => {
  const result = parseEnv({
    SLUICE_WORKERS: 'many',
    SLUICE_LISTEN: 'nowhere',
    SLUICE_BALANCER: 'best',
    SLUICE_UPSTREAMS: 'ftp://a,http://b/c',
    SLUICE_LOG_LEVEL: 'debug',
  });
  t.notOk(result.ok);
  if (result.ok) return;
  t.same(
    result.errors.map((e) => e.variable),
    ['SLUICE_LISTEN', 'SLUICE_UPSTREAMS', 'SLUICE_UPSTREAMS', 'SLUICE_WORKERS', 'SLUICE_BALANCER'],
  );
});

t.test('ConfigError is a typed Error', async (t) => {
  const [error] = bad('SLUICE_IDLE_TIMEOUT_MS', 'forever');
  t.type(error, ConfigError);
  t.type(error, Error);
  t.equal(error?.name, 'ConfigError');
  t.equal(error?.variable, 'SLUICE_IDLE_TIMEOUT_MS');
  t.equal(error?.value, 'forever');
  t.equal(error?.expected, 'an integer from 1 to 3600000');
  t.equal(error?.item, undefined);
  t.equal(error?.message, 'SLUICE_IDLE_TIMEOUT_MS="forever": expected an integer from 1 to 3600000');
});

t.test('unknown SLUICE_* variables are warnings with a suggestion', async (t) => {
  const result = parseEnv({
    SLUICE_WOKERS: '4',
    sluice_balancer: 'random',
    SLUICE_UPSTREAM: 'http://a',
    SLUICE_SOMETHING_ELSE_ENTIRELY: '1',
    PATH: '/bin',
    NOT_SLUICE_WORKERS: '1',
  });
  t.ok(result.ok, 'warnings are not errors');
  t.same(result.warnings, [
    'SLUICE_SOMETHING_ELSE_ENTIRELY is not a Sluice variable and is ignored',
    'SLUICE_UPSTREAM is not a Sluice variable and is ignored (did you mean SLUICE_UPSTREAMS?)',
    'SLUICE_WOKERS is not a Sluice variable and is ignored (did you mean SLUICE_WORKERS?)',
    'sluice_balancer is not a Sluice variable and is ignored (did you mean SLUICE_BALANCER?)',
  ]);
  if (result.ok) t.equal(result.config.workers, DEFAULTS.workers, 'the misspelt value is not used');

  const failing = parseEnv({ SLUICE_WORKERS: 'x', SLUICE_LOGLEVEL: 'debug' });
  t.notOk(failing.ok);
  t.same(failing.warnings, ['SLUICE_LOGLEVEL is not a Sluice variable and is ignored (did you mean SLUICE_LOG_LEVEL?)']);
});
