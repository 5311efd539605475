// The health, outlier, retry and env-file variables: defaults, accepted forms, and rejections that
// name the variable and say what was expected.

import t from 'tap';
import { isAbsolute } from 'node:path';
import { parseEnv } from '../../src/config/env.js';
import type { Config } from '../../src/config/types.js';
import { statusAccepted } from '../../src/health/value-parsers.js';

function config(env: Record<string, string>): Config {
  const r = parseEnv(env);
  if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('; '));
  return r.config;
}

function rejected(variable: string, value: string): string[] {
  const r = parseEnv({ [variable]: value });
  if (r.ok) throw new Error(`${variable}=${value} accepted`);
  return r.errors.map((e) => e.message);
}

t.test('defaults from the issue', async (t) => {
  t.match(config({}), {
    healthCheck: 'on',
    healthPath: '',
    healthExpect: [{ from: 200, to: 299 }],
    healthIntervalMs: 2000,
    healthTimeoutMs: 1000,
    healthyThreshold: 2,
    unhealthyThreshold: 3,
    outlierConsecutive5xx: 5,
    outlierConsecutiveFailures: 5,
    outlierBaseEjectionMs: 30_000,
    outlierMaxEjectionMs: 300_000,
    outlierMaxEjectionPercent: 10,
    retries: 1,
    retryBudgetPercent: 20,
    maxRequestsPerBackend: 0,
    upstreamPipeline: 16,
    upstreamPipelineHolMs: 20,
    envFile: '',
  });
});

t.test('SLUICE_HEALTH_CHECK and SLUICE_HEALTH_PATH', async (t) => {
  t.equal(config({ SLUICE_HEALTH_CHECK: 'OFF' }).healthCheck, 'off');
  t.match(rejected('SLUICE_HEALTH_CHECK', 'tcp'), [/^SLUICE_HEALTH_CHECK="tcp": expected one of on, off/]);
  for (const path of ['/healthz', '/', '/status?full=1&x=%20', "/a/b-c_d.e~f!$&'()*+,;=:@"]) {
    t.equal(config({ SLUICE_HEALTH_PATH: path }).healthPath, path);
  }
  for (const path of ['healthz', '/a b', '/a#frag', '/a"b', 'http://x/healthz', `/${'a'.repeat(2048)}`]) {
    t.match(rejected('SLUICE_HEALTH_PATH', path), [/^SLUICE_HEALTH_PATH=".*": expected a path starting with \//], path);
  }
});

t.test('SLUICE_HEALTH_EXPECT: codes and classes', async (t) => {
  t.same(config({ SLUICE_HEALTH_EXPECT: '200,204' }).healthExpect, [{ from: 200, to: 200 }, { from: 204, to: 204 }]);
  t.same(config({ SLUICE_HEALTH_EXPECT: '2XX, 301' }).healthExpect, [{ from: 200, to: 299 }, { from: 301, to: 301 }]);
  for (const bad of ['600', '99', '2x', '20', 'ok', '6xx', '200-204']) {
    t.match(rejected('SLUICE_HEALTH_EXPECT', bad), [/expected a status code from 100 to 599 or a class such as 2xx/], bad);
  }
  t.match(rejected('SLUICE_HEALTH_EXPECT', ','), [/at least one status code/]);
  t.match(rejected('SLUICE_HEALTH_EXPECT', '200,200'), [/each item once/]);
  const ranges = config({ SLUICE_HEALTH_EXPECT: '2xx,301' }).healthExpect;
  t.same([199, 200, 250, 299, 300, 301, 302, 500].map((s) => statusAccepted(s, ranges)), [false, true, true, true, false, true, false, false]);
});

t.test('numbers and their ranges', async (t) => {
  t.match(rejected('SLUICE_HEALTH_INTERVAL_MS', '5'), [/from 10 to 3600000/]);
  t.match(rejected('SLUICE_HEALTH_TIMEOUT_MS', '0'), [/from 1 to 3600000/]);
  t.match(rejected('SLUICE_HEALTHY_THRESHOLD', '0'), [/from 1 to 100/]);
  t.match(rejected('SLUICE_UNHEALTHY_THRESHOLD', '101'), [/from 1 to 100/]);
  t.equal(config({ SLUICE_OUTLIER_CONSECUTIVE_5XX: '0' }).outlierConsecutive5xx, 0, '0 disables');
  t.equal(config({ SLUICE_OUTLIER_MAX_EJECTION_PERCENT: '12.5' }).outlierMaxEjectionPercent, 12.5);
  t.match(rejected('SLUICE_OUTLIER_MAX_EJECTION_PERCENT', '101'), [/from 0 to 100/]);
  t.match(rejected('SLUICE_RETRIES', '11'), [/from 0 to 10/]);
  t.equal(config({ SLUICE_MAX_REQUESTS_PER_BACKEND: '256' }).maxRequestsPerBackend, 256);
});

t.test('SLUICE_ENV_FILE is made absolute', async (t) => {
  t.equal(config({ SLUICE_ENV_FILE: '/etc/sluice/sluice.env' }).envFile, '/etc/sluice/sluice.env');
  const relative = config({ SLUICE_ENV_FILE: 'sluice.env' }).envFile;
  t.ok(isAbsolute(relative) && relative.endsWith('/sluice.env'), relative);
});
