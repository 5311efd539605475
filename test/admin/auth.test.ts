// Who may use the admin listener: bearer token (401 without, 403 wrong, 200 right), refusals
// logged, the CSRF guard on POST, Host checks against DNS rebinding, and the start-up rule that a
// non-loopback admin listener needs a token.

import t from 'tap';
import { startBackend } from '../helpers/backends.js';
import { ensureBuilt, freePort, runCli } from '../helpers/sluice.js';
import { adminPost, bearer, request, startWithAdmin } from './admin-helpers.js';

const TOKEN = 'k3y-for-tests_0123456789abcdef';

t.test('with a token every call needs it', async (t) => {
  const a = await startBackend(t);
  const { sluice, admin } = await startWithAdmin(t, { upstreams: [a.url], env: { SLUICE_ADMIN_TOKEN: TOKEN } });

  for (const path of ['/metrics', '/api/status', '/api/backends', '/api/backends/0', '/nope']) {
    const none = await request(`${admin}${path}`);
    t.equal(none.status, 401, `${path} without a token`);
    t.equal(none.headers['www-authenticate'], 'Bearer realm="sluice-admin"');
    t.equal((await request(`${admin}${path}`, { headers: bearer(`${TOKEN}x`) })).status, 403, `${path} wrong token`);
    t.equal((await request(`${admin}${path}`, { headers: { authorization: `Basic ${TOKEN}` } })).status, 401, `${path} not Bearer`);
  }
  for (const path of ['/metrics', '/api/status', '/api/backends']) {
    t.equal((await request(`${admin}${path}`, { headers: bearer(TOKEN) })).status, 200, `${path} right token`);
  }
  t.equal((await request(`${admin}/nope`, { headers: bearer(TOKEN) })).status, 404, 'authorised, then routed');

  t.equal((await adminPost(admin, '/api/backends/0/drain')).status, 401, 'POST without a token');
  t.equal((await adminPost(admin, '/api/backends/0/drain', undefined, bearer('wrong-token-0123456789'))).status, 403);
  t.equal((await adminPost(admin, '/api/backends/0/drain', undefined, bearer(TOKEN))).status, 200, 'POST with it');

  const page = await request(`${admin}/`);
  t.equal(page.status, 200, 'the status page shell (no data) loads without a token');
  t.notMatch(page.body, TOKEN);

  const status = await request(`${admin}/api/status`, { headers: bearer(TOKEN) });
  t.notMatch(status.body, TOKEN, 'the token is never shown');
  t.equal(JSON.parse(status.body).config.SLUICE_ADMIN_TOKEN, '(set)');
  t.notMatch(sluice.stdout() + sluice.stderr(), TOKEN, 'nor logged');

  const refused = sluice.logs().filter((l) => l.msg === 'admin call refused');
  t.equal(refused.length, 5 * 3 + 2, 'every refused call is logged');
  t.match(refused[0], { status: 401, path: '/metrics', reason: 'no Authorization header' });
  t.match(refused[1], { status: 403, reason: 'wrong token' });
});

t.test('POSTs need X-Sluice-Admin and a same-origin Origin (CSRF)', async (t) => {
  const a = await startBackend(t);
  const { sluice, admin } = await startWithAdmin(t, { upstreams: [a.url] });
  const form = await request(`${admin}/api/backends/0/drain`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'x=1',
  });
  t.equal(form.status, 403, 'a plain form post is refused');
  const crossSite = await adminPost(admin, '/api/backends/0/drain', undefined, { origin: 'https://evil.example' });
  t.equal(crossSite.status, 403, 'cross-origin is refused');
  const sameSite = await adminPost(admin, '/api/backends/0/drain', undefined, { origin: admin });
  t.equal(sameSite.status, 200, 'same origin passes');
  t.equal((await request(`${sluice.url}/`)).status, 503, 'the only backend is drained');
  t.ok(sluice.logs().some((l) => l.msg === 'admin call refused' && l.reason === 'cross-origin request'));
});

t.test('without a token, a rebinding Host is refused', async (t) => {
  const a = await startBackend(t);
  const { admin } = await startWithAdmin(t, { upstreams: [a.url] });
  t.equal((await request(`${admin}/api/status`, { headers: { host: 'attacker.example:9901' } })).status, 403);
  t.equal((await request(`${admin}/`, { headers: { host: 'attacker.example' } })).status, 403);
  t.equal((await request(`${admin}/api/status`, { headers: { host: 'localhost:9901' } })).status, 200);
  t.equal((await request(`${admin}/api/status`, { headers: { host: '[::1]:9901' } })).status, 200);
});

t.test('a non-loopback admin listener without a token does not start', async (t) => {
  await ensureBuilt();
  const port = await freePort();
  const r = runCli({ SLUICE_ADMIN_LISTEN: `0.0.0.0:${port}`, SLUICE_UPSTREAMS: 'http://127.0.0.1:1' });
  t.equal(r.code, 1);
  t.match(r.stderr, /SLUICE_ADMIN_TOKEN="": expected a token, because SLUICE_ADMIN_LISTEN \(0\.0\.0\.0:\d+\) is not a loopback address/);

  const short = runCli({ SLUICE_ADMIN_LISTEN: `0.0.0.0:${port}`, SLUICE_ADMIN_TOKEN: 'tooShort', SLUICE_UPSTREAMS: 'http://127.0.0.1:1' });
  t.equal(short.code, 1);
  t.match(short.stderr, /SLUICE_ADMIN_TOKEN="\(hidden\)": expected a token of 16 to 1024 characters/);
  t.notMatch(short.stderr, 'tooShort', 'a rejected token is not echoed');
});

t.test('the admin port in use stops start-up with a clear error', async (t) => {
  const a = await startBackend(t);
  const first = await startWithAdmin(t, { upstreams: [a.url] });
  const port = new URL(first.admin).port;
  const r = runCli({ SLUICE_LISTEN: `127.0.0.1:${await freePort()}`, SLUICE_ADMIN_LISTEN: `127.0.0.1:${port}`, SLUICE_UPSTREAMS: a.url, SLUICE_HEALTH_CHECK: 'off', SLUICE_WORKERS: '1' });
  t.equal(r.code, 1);
  t.match(r.stdout + r.stderr, new RegExp(`SLUICE_ADMIN_LISTEN 127\\.0\\.0\\.1:${port}: listen EADDRINUSE`));
});
