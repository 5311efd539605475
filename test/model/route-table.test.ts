// The compiled route table: every matcher, host wildcards against exact names, paths matched as
// sent, first match in file order, and a property test holding the indexed lookup to a plain scan.

import t from 'tap';
import { compileRoutes, plainRequest, RouteTableError, type RouteMatch, type RouteSpec } from '../../src/model/index.js';
import { rng } from '../helpers/rng.js';

let counter = 0;
function route(match: RouteMatch, name = `r${counter++}`): RouteSpec {
  return { name, match, action: { kind: 'pool', pool: 'p' } };
}

/** Name of the route a request matches, or null. Checks the scan agrees. */
function matchName(routes: RouteSpec[], method: string, host: string, target: string, headers: [string, string][] = []) {
  const table = compileRoutes(routes);
  const view = plainRequest(method, host, target, headers);
  const found = table.match(view);
  const scanned = table.scan(view);
  if (found !== scanned) throw new Error(`index chose ${found?.name}, scan chose ${scanned?.name}`);
  return found?.name ?? null;
}

t.test('host: exact, wildcard, port ignored, case-insensitive', async (t) => {
  const routes = [route({ host: 'api.example.com' }, 'exact'), route({ host: '*.example.com' }, 'wild')];
  t.equal(matchName(routes, 'GET', 'api.example.com', '/'), 'exact');
  t.equal(matchName(routes, 'GET', 'API.Example.COM:8443', '/'), 'exact', 'case and port');
  t.equal(matchName(routes, 'GET', 'www.example.com', '/'), 'wild');
  t.equal(matchName(routes, 'GET', 'a.b.example.com', '/'), 'wild', 'any depth');
  t.equal(matchName(routes, 'GET', 'example.com', '/'), null, 'the wildcard needs a label before the suffix');
  t.equal(matchName(routes, 'GET', 'badexample.com', '/'), null, 'the suffix starts at a dot');
  t.equal(matchName(routes, 'GET', 'www.example.com.', '/'), 'wild', 'trailing dot');
  t.equal(matchName(routes, 'GET', '', '/'), null, 'no Host header');
  t.equal(matchName([route({ host: '[::1]' }, 'v6')], 'GET', '[::1]:8080', '/'), 'v6');
});

t.test('host: an exact route and a wildcard route, file order decides', async (t) => {
  const wildFirst = [route({ host: '*.example.com' }, 'wild'), route({ host: 'api.example.com', path: '/x' }, 'exact')];
  t.equal(matchName(wildFirst, 'GET', 'api.example.com', '/x'), 'wild');
  const exactFirst = [route({ host: 'api.example.com', path: '/x' }, 'exact'), route({ host: '*.example.com' }, 'wild')];
  t.equal(matchName(exactFirst, 'GET', 'api.example.com', '/x'), 'exact');
  t.equal(matchName(exactFirst, 'GET', 'api.example.com', '/y'), 'wild', 'exact host but its path does not hold');
  // Nested wildcards: the narrower one first, the broader one still catches what it leaves.
  const nested = [route({ host: '*.eu.example.com', path: '/a' }, 'eu'), route({ host: '*.example.com' }, 'all'), route({}, 'any')];
  t.equal(matchName(nested, 'GET', 'x.eu.example.com', '/a'), 'eu');
  t.equal(matchName(nested, 'GET', 'x.eu.example.com', '/b'), 'all');
  t.equal(matchName(nested, 'GET', 'other.org', '/b'), 'any');
  const anyFirst = [route({ methods: ['POST'] }, 'posts'), route({ host: 'api.example.com' }, 'api')];
  t.equal(matchName(anyFirst, 'POST', 'api.example.com', '/'), 'posts', 'a host-less route earlier in the file wins');
  t.equal(matchName(anyFirst, 'GET', 'api.example.com', '/'), 'api');
});

t.test('path, path_prefix (segment-aware), path_regex', async (t) => {
  const routes = [
    route({ path: '/exact' }, 'exact'),
    route({ pathPrefix: '/v1' }, 'v1'),
    route({ pathPrefix: '/docs/' }, 'docs'),
    route({ pathRegex: '/users/[0-9]+' }, 'user'),
  ];
  t.equal(matchName(routes, 'GET', 'h', '/exact'), 'exact');
  t.equal(matchName(routes, 'GET', 'h', '/exact/'), null, 'exact means exact');
  t.equal(matchName(routes, 'GET', 'h', '/v1'), 'v1');
  t.equal(matchName(routes, 'GET', 'h', '/v1/'), 'v1');
  t.equal(matchName(routes, 'GET', 'h', '/v1/users?x=1'), 'v1', 'the query is not part of the path');
  t.equal(matchName(routes, 'GET', 'h', '/v10'), null, 'no match inside a segment');
  t.equal(matchName(routes, 'GET', 'h', '/docs/a'), 'docs');
  t.equal(matchName(routes, 'GET', 'h', '/docs'), null, 'a prefix ending in / needs the /');
  t.equal(matchName(routes, 'GET', 'h', '/users/42'), 'user');
  t.equal(matchName(routes, 'GET', 'h', '/users/42/x'), null, 'regexes are anchored at the end');
  t.equal(matchName(routes, 'GET', 'h', '/x/users/42'), null, 'and at the start');
  t.equal(matchName(routes, 'GET', 'h', '/Exact'), null, 'paths are case-sensitive');
});

t.test('paths are matched as sent: traversal-ish paths are not normalised into another route', async (t) => {
  const routes = [route({ pathPrefix: '/admin' }, 'admin'), route({ pathPrefix: '/v1/' }, 'v1'), route({ pathPrefix: '/' }, 'rest')];
  t.equal(matchName(routes, 'GET', 'h', '/v1/../admin'), 'v1', '/v1/../admin stays under /v1/');
  t.equal(matchName(routes, 'GET', 'h', '/v1/%2e%2e/admin'), 'v1');
  t.equal(matchName(routes, 'GET', 'h', '/%61dmin'), 'rest', 'percent-escapes are not decoded');
  t.equal(matchName(routes, 'GET', 'h', '/v1%2Fadmin'), 'rest', '%2F is not a separator');
  t.equal(matchName(routes, 'GET', 'h', '//admin'), 'rest', 'an empty first segment is not skipped');
  t.equal(matchName(routes, 'GET', 'h', '/./admin'), 'rest');
});

t.test('methods, headers, query', async (t) => {
  const routes = [
    route({ methods: ['GET', 'HEAD'], pathPrefix: '/shop/' }, 'shop-read'),
    route({ headers: [{ name: 'x-canary', match: { kind: 'exact', value: '1' } }] }, 'canary'),
    route({ headers: [{ name: 'authorization', match: { kind: 'prefix', value: 'Bearer ' } }] }, 'bearer'),
    route({ headers: [{ name: 'x-tenant', match: { kind: 'regex', pattern: '[a-z]{3}-[0-9]+' } }] }, 'tenant'),
    route({ headers: [{ name: 'x-debug', match: { kind: 'present', present: true } }] }, 'debug'),
    route({ query: [{ name: 'v', value: 'a b' }] }, 'query'),
    route({ path: '/anon', headers: [{ name: 'cookie', match: { kind: 'present', present: false } }] }, 'anon'),
  ];
  t.equal(matchName(routes, 'HEAD', 'h', '/shop/x'), 'shop-read');
  t.equal(matchName(routes, 'POST', 'h', '/shop/x'), null);
  t.equal(matchName(routes, 'GET', 'h', '/', [['X-Canary', '1']]), 'canary', 'header names are case-insensitive');
  t.equal(matchName(routes, 'GET', 'h', '/', [['x-canary', '10']]), null, 'exact is exact');
  t.equal(matchName(routes, 'GET', 'h', '/', [['authorization', 'Bearer abc']]), 'bearer');
  t.equal(matchName(routes, 'GET', 'h', '/', [['authorization', 'Basic abc']]), null);
  t.equal(matchName(routes, 'GET', 'h', '/', [['x-tenant', 'abc-12']]), 'tenant');
  t.equal(matchName(routes, 'GET', 'h', '/', [['x-tenant', 'abc-12x']]), null, 'header regexes are anchored');
  t.equal(matchName(routes, 'GET', 'h', '/', [['x-debug', 'yes']]), 'debug');
  t.equal(matchName(routes, 'GET', 'h', '/', [['x-debug', '']]), null, 'an empty header counts as absent');
  t.equal(matchName(routes, 'GET', 'h', '/?x=1&v=a+b'), 'query', 'decoded +');
  t.equal(matchName(routes, 'GET', 'h', '/?v=a%20b'), 'query', 'decoded %20');
  t.equal(matchName(routes, 'GET', 'h', '/?v=a%2'), null, 'malformed escapes match nothing');
  t.equal(matchName(routes, 'GET', 'h', '/?vv=a b'), null, 'whole names only');
  t.equal(matchName(routes, 'GET', 'h', '/anon'), 'anon');
  t.equal(matchName(routes, 'GET', 'h', '/anon', [['cookie', 'a=1']]), null);
});

t.test('all given matchers must hold; first in file order wins; no match is null', async (t) => {
  const routes = [
    route({ host: 'api.example.com', pathPrefix: '/v1/', methods: ['POST'] }, 'post-v1'),
    route({ host: 'api.example.com', pathPrefix: '/v1/' }, 'v1'),
    route({ pathPrefix: '/v1/' }, 'any-v1'),
  ];
  t.equal(matchName(routes, 'POST', 'api.example.com', '/v1/x'), 'post-v1');
  t.equal(matchName(routes, 'GET', 'api.example.com', '/v1/x'), 'v1');
  t.equal(matchName(routes, 'GET', 'web.example.com', '/v1/x'), 'any-v1');
  t.equal(matchName(routes, 'GET', 'web.example.com', '/v2/x'), null);
});

t.test('compileRoutes reports every bad route and duplicate names', async (t) => {
  const err = t.throws(() =>
    compileRoutes([
      route({ pathRegex: '(a+)+' }, 'bad-regex'),
      route({ host: 'a*.example.com' }, 'bad-host'),
      route({}, 'bad-regex'),
    ]),
  ) as RouteTableError;
  t.type(err, RouteTableError);
  t.equal(err.errors.length, 3);
  t.match(err.message, /routes\[0\] \(name "bad-regex"\): match\.path_regex: .*catastrophically/);
  t.match(err.message, /routes\[1\] \(name "bad-host"\): match\.host: /);
  t.match(err.message, /routes\[2\] \(name "bad-regex"\): name is already used by routes\[0\]/);
});

// --- Property test: the index returns what a first-match scan returns. ---

const HOSTS = ['a.example.com', 'b.example.com', 'x.eu.example.com', 'example.com', 'other.org'];
const HOST_PATTERNS = [...HOSTS, '*.example.com', '*.eu.example.com', '*.org'];
const SEGMENTS = ['v1', 'v2', 'users', 'a', 'ab', ''];
const METHODS = ['GET', 'POST', 'HEAD'];

function pick<T>(r: () => number, list: readonly T[]): T {
  return list[Math.floor(r() * list.length)];
}

function randomPath(r: () => number): string {
  const n = 1 + Math.floor(r() * 3);
  let p = '';
  for (let i = 0; i < n; i++) p += `/${pick(r, SEGMENTS)}`;
  return p;
}

function randomMatch(r: () => number): RouteMatch {
  const m: { -readonly [K in keyof RouteMatch]: RouteMatch[K] } = {};
  if (r() < 0.6) m.host = pick(r, HOST_PATTERNS);
  const p = r();
  if (p < 0.2) m.path = randomPath(r);
  else if (p < 0.7) m.pathPrefix = randomPath(r) + (r() < 0.3 ? '/' : '');
  else if (p < 0.8) m.pathRegex = `/${pick(r, ['v[12]', 'users', 'a?b?'])}(/[a-z0-9]*)?`;
  if (r() < 0.2) m.methods = [pick(r, METHODS)];
  if (r() < 0.2) m.headers = [{ name: 'x-h', match: r() < 0.5 ? { kind: 'exact', value: '1' } : { kind: 'present', present: r() < 0.5 } }];
  if (r() < 0.1) m.query = [{ name: 'q', value: '1' }];
  return m;
}

t.test('property: the indexed lookup equals a first-match scan', async (t) => {
  let checked = 0;
  let matched = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const r = rng(seed);
    const size = 1 + Math.floor(r() * 80);
    const table = compileRoutes(Array.from({ length: size }, (_, i) => ({ ...route(randomMatch(r)), name: `s${seed}-${i}` })));
    for (let k = 0; k < 300; k++) {
      const headers: [string, string][] = r() < 0.5 ? [['x-h', pick(r, ['1', '2'])]] : [];
      const host = pick(r, HOSTS) + (r() < 0.2 ? ':8080' : '');
      const target = randomPath(r) + (r() < 0.3 ? '/' : '') + (r() < 0.2 ? '?q=1' : '');
      const view = plainRequest(pick(r, METHODS), r() < 0.1 ? host.toUpperCase() : host, target, headers);
      const expected = table.scan(view);
      const got = table.match(view);
      if (got !== expected) {
        t.fail(`seed ${seed}: ${view.method} ${host}${target} → index ${got?.name}, scan ${expected?.name}`);
        return;
      }
      checked++;
      if (got !== null) matched++;
    }
  }
  t.pass(`${checked} lookups agree`);
  t.ok(matched > checked / 5 && matched < checked, `the random tables match some requests and not others (${matched}/${checked})`);
});

t.test('a generated 1,000-route table compiles and matches (timed with the file load in test/config/file.test.ts)', async (t) => {
  const routes: RouteSpec[] = [];
  for (let i = 0; i < 1000; i++) {
    const kind = i % 4;
    const match: RouteMatch =
      kind === 0 ? { host: `svc${i}.example.com`, pathPrefix: `/api/v${i % 7}` }
      : kind === 1 ? { host: `*.zone${i}.example.com`, path: `/p/${i}` }
      : kind === 2 ? { pathPrefix: `/static/${i}/` }
      : { pathRegex: `/r/${i}/[0-9]+`, methods: ['GET'] };
    routes.push({ name: `gen-${i}`, match, action: { kind: 'pool', pool: 'p' } });
  }
  const table = compileRoutes(routes);
  t.equal(table.match(plainRequest('GET', 'svc400.example.com', '/api/v1/x'))?.name, 'gen-400');
  t.equal(table.match(plainRequest('GET', 'a.zone401.example.com', '/p/401'))?.name, 'gen-401');
  t.equal(table.match(plainRequest('GET', 'h', '/static/402/x.css'))?.name, 'gen-402');
  t.equal(table.match(plainRequest('GET', 'h', '/r/403/7'))?.name, 'gen-403');
  t.equal(table.match(plainRequest('GET', 'h', '/nothing')), null);
});
