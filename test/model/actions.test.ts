// Route actions as pure helpers: path and host rewrites, header edits, redirects, fixed responses.

import t from 'tap';
import { applyHeaderOps, compileHeaderOps, headerOpsProblems, HeaderOpsError } from '../../src/model/header-ops.js';
import { compilePathRewrite, hostProblem, pathRewriteProblems } from '../../src/model/rewrite.js';
import { compileRedirect, redirectProblems, type RequestTarget } from '../../src/model/redirect.js';
import { compileRespond, respondProblems } from '../../src/model/respond.js';
import type { RouteMatch } from '../../src/model/route.js';

t.test('strip_prefix: at a segment boundary only, never leaving an empty path', async (t) => {
  const r = compilePathRewrite({ kind: 'strip-prefix', prefix: '/v1' }, {});
  t.equal(r?.rewrite('/v1/users'), '/users');
  t.equal(r?.rewrite('/v1'), '/');
  t.equal(r?.rewrite('/v10/x'), '/v10/x', 'not inside a segment');
  t.equal(r?.rewrite('/other'), '/other');
  const slash = compilePathRewrite({ kind: 'strip-prefix', prefix: '/v1/' }, {});
  t.equal(slash?.rewrite('/v1/users'), '/users');
  t.equal(compilePathRewrite(undefined, {}), null);
});

t.test('prefix_rewrite replaces what the route matched', async (t) => {
  const m: RouteMatch = { pathPrefix: '/v1' };
  t.equal(compilePathRewrite({ kind: 'prefix', replacement: '/api/v2' }, m)?.rewrite('/v1/users'), '/api/v2/users');
  t.equal(compilePathRewrite({ kind: 'prefix', replacement: '/api/v2' }, m)?.rewrite('/v1'), '/api/v2');
  t.equal(compilePathRewrite({ kind: 'prefix', replacement: '/' }, m)?.rewrite('/v1/users'), '/users', 'no // at the seam');
  t.equal(compilePathRewrite({ kind: 'prefix', replacement: '' }, m)?.rewrite('/v1'), '/');
  t.equal(compilePathRewrite({ kind: 'prefix', replacement: '/new' }, { path: '/old' })?.rewrite('/old'), '/new');
  t.match(pathRewriteProblems({ kind: 'prefix', replacement: '/x' }, { pathRegex: '/a' }), [/needs match.path_prefix or match.path/]);
});

t.test('regex_rewrite: every match, \\N and $N captures, escapes', async (t) => {
  const r = compilePathRewrite({ kind: 'regex', pattern: '^/users/(\\d+)/(\\w+)$', substitution: '/u/\\2/$1' }, {});
  t.equal(r?.rewrite('/users/42/posts'), '/u/posts/42');
  t.equal(r?.rewrite('/other'), '/other', 'no match: unchanged');
  t.equal(compilePathRewrite({ kind: 'regex', pattern: '_', substitution: '-' }, {})?.rewrite('/a_b_c'), '/a-b-c', 'every match');
  t.equal(compilePathRewrite({ kind: 'regex', pattern: '^/(.*)$', substitution: '/$$\\\\$0' }, {})?.rewrite('/x'), '/$\\/x', '$$ and \\\\ are literals, $0 the whole match');
  t.equal(compilePathRewrite({ kind: 'regex', pattern: '^/', substitution: '' }, {})?.rewrite('/x'), '/x', 'the result keeps a leading /');
  t.match(pathRewriteProblems({ kind: 'regex', pattern: '(a)', substitution: '$2' }, {}), [/\$2 names a capture the pattern does not have \(it has 1\)/]);
  t.match(pathRewriteProblems({ kind: 'regex', pattern: 'a', substitution: '$x' }, {}), [/must be followed by a digit/]);
  t.match(pathRewriteProblems({ kind: 'regex', pattern: 'a', substitution: '/x?y=1' }, {}), [/changes only the path/]);
  t.match(pathRewriteProblems({ kind: 'regex', pattern: '(a|a)+', substitution: '' }, {}), [/regex_rewrite.pattern: .*catastrophically/]);
});

t.test('host_rewrite values', async (t) => {
  for (const ok of ['example.com', 'api.internal:8080', '10.0.0.5', '[::1]:8443']) t.equal(hostProblem(ok), null, ok);
  for (const bad of ['exa mple.com', 'a:99999', 'x\r\ny', '', 'http://x']) t.type(hostProblem(bad), 'string', JSON.stringify(bad));
});

t.test('header edits: remove, set, add; names lower-cased; values checked', async (t) => {
  const ops = compileHeaderOps(
    { set: [{ name: 'X-Env', value: 'prod' }], add: [{ name: 'via', value: 'sluice' }], remove: ['X-Debug'] },
    'request',
  );
  const out = applyHeaderOps(ops, [
    { name: 'X-Env', value: 'dev' },
    { name: 'x-debug', value: '1' },
    { name: 'Accept', value: '*/*' },
    { name: 'via', value: 'edge' },
  ]);
  t.same(out, [
    { name: 'accept', value: '*/*' },
    { name: 'via', value: 'edge' },
    { name: 'x-env', value: 'prod' },
    { name: 'via', value: 'sluice' },
  ]);
  t.ok(compileHeaderOps(undefined, 'request').empty);
  t.ok(compileHeaderOps({}, 'response').empty);

  t.match(headerOpsProblems({ set: [{ name: 'x', value: 'a\r\nInjected: 1' }] }, 'request'), [/set\.x: .*control character/]);
  t.match(headerOpsProblems({ add: [{ name: 'x', value: 'a\u0000' }] }, 'response'), [/control character/]);
  t.match(headerOpsProblems({ set: [{ name: 'bad name', value: '1' }] }, 'request'), [/not a header name/]);
  t.match(headerOpsProblems({ set: [{ name: 'Host', value: 'x' }] }, 'request'), [/use host_rewrite/]);
  t.match(headerOpsProblems({ remove: ['content-length'] }, 'response'), [/remove\[0\]: .*frames the body/]);
  t.match(headerOpsProblems({ set: [{ name: 'x', value: '1' }], remove: ['X'] }, 'request'), [/also set/]);
  t.same(headerOpsProblems({ set: [{ name: 'x', value: 'tab\tok' }] }, 'request'), [], 'HTAB is allowed');
  t.throws(() => compileHeaderOps({ remove: ['connection'] }, 'request'), HeaderOpsError);
});

const request: RequestTarget = { scheme: 'http', host: 'Shop.Example.com:8080', path: '/old/item', query: 'a=1' };

t.test('redirect: literal location, or parts replacing the request own', async (t) => {
  const literal = compileRedirect({ status: 301, location: '/new' }, {});
  t.equal(literal.status, 301);
  t.equal(literal.statusLine, '301 Moved Permanently');
  t.equal(literal.location(request), '/new', 'a literal location drops the query');

  const https = compileRedirect({ status: 308, scheme: 'https' }, {});
  t.equal(https.location(request), 'https://shop.example.com/old/item?a=1', 'a new scheme drops the old port');
  t.equal(compileRedirect({ status: 302, scheme: 'https', port: 8443 }, {}).location(request), 'https://shop.example.com:8443/old/item?a=1');
  t.equal(compileRedirect({ status: 302, host: 'www.example.com' }, {}).location(request), 'http://www.example.com:8080/old/item?a=1', 'same scheme keeps the port');
  t.equal(compileRedirect({ status: 302, scheme: 'http', port: 80 }, {}).location(request), 'http://shop.example.com/old/item?a=1', 'default port not written');
  t.equal(compileRedirect({ status: 303, path: '/new', query: '' }, {}).location(request), '/new', 'only path parts: relative');
  t.equal(compileRedirect({ status: 307, query: 'b=2' }, {}).location(request), '/old/item?b=2');
  t.equal(compileRedirect({ status: 301, prefixRewrite: '/new/' }, { pathPrefix: '/old/' }).location(request), '/new/item?a=1');
  t.equal(compileRedirect({ status: 301, scheme: 'https' }, {}).location({ ...request, host: '' }), '/old/item?a=1', 'no Host: relative');
  t.equal(compileRedirect({ status: 301, scheme: 'https' }, {}).location({ ...request, host: '[::1]:8080' }), 'https://[::1]/old/item?a=1');
});

t.test('redirect problems', async (t) => {
  t.match(redirectProblems({ status: 200 as 301, location: '/x' }, {}), [/status: 200 is not a redirect status/]);
  t.match(redirectProblems({ status: 301, location: '/x', path: '/y' }, {}), [/either location or the parts/]);
  t.match(redirectProblems({ status: 301, location: 'new page' }, {}), [/location: /]);
  t.match(redirectProblems({ status: 301 }, {}), [/needs location/]);
  t.match(redirectProblems({ status: 301, host: 'x.com:81' }, {}), [/give the port as port:/]);
  t.match(redirectProblems({ status: 301, port: 0 }, {}), [/port: 0/]);
  t.match(redirectProblems({ status: 301, prefixRewrite: '/x' }, {}), [/needs match.path_prefix/]);
  t.match(redirectProblems({ status: 301, query: '?a=1' }, {}), [/without the leading \?/]);
  t.same(redirectProblems({ status: 301, location: 'https://example.com/x?y=1' }, {}), []);
});

t.test('respond: status, headers, body, default content-type', async (t) => {
  const r = compileRespond({ status: 503, body: 'down for maintenance\n', headers: [{ name: 'Retry-After', value: '120' }] });
  t.equal(r.statusLine, '503 Service Unavailable');
  t.same(r.headers, [
    { name: 'retry-after', value: '120' },
    { name: 'content-type', value: 'text/plain; charset=utf-8' },
  ]);
  t.equal(r.body, 'down for maintenance\n');
  const typed = compileRespond({ status: 200, body: '{}', headers: [{ name: 'content-type', value: 'application/json' }] });
  t.same(typed.headers, [{ name: 'content-type', value: 'application/json' }], 'a given content-type is kept');
  t.same(compileRespond({ status: 204 }).headers, [], 'no body, no content-type');
  t.match(respondProblems({ status: 204, body: 'x' }), [/204 response has no body/]);
  t.match(respondProblems({ status: 99 }), [/status: 99/]);
  t.match(respondProblems({ status: 200, headers: [{ name: 'content-length', value: '1' }] }), [/headers.content-length/]);
});
