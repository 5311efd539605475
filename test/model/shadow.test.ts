// Unreachable routes: reported when certain, never when some request could still reach them.

import t from 'tap';
import { covers, findShadowed } from '../../src/model/shadow.js';
import type { RouteMatch } from '../../src/model/route.js';

t.test('an earlier catch-all shadows everything after it', async (t) => {
  t.same(findShadowed([{}, { path: '/x' }, { host: 'a.com' }]), [
    { index: 1, by: 0 },
    { index: 2, by: 0 },
  ]);
  t.same(findShadowed([{ pathPrefix: '/' }, { pathPrefix: '/api' }]), [{ index: 1, by: 0 }]);
});

t.test('what covers what', async (t) => {
  const yes: [RouteMatch, RouteMatch][] = [
    [{ host: '*.example.com' }, { host: 'api.example.com' }],
    [{ host: '*.example.com' }, { host: '*.eu.example.com' }],
    [{ host: 'API.example.com' }, { host: 'api.example.com', path: '/x' }],
    [{ pathPrefix: '/v1' }, { pathPrefix: '/v1/' }],
    [{ pathPrefix: '/v1' }, { path: '/v1' }],
    [{ pathPrefix: '/v1/' }, { pathPrefix: '/v1/users' }],
    [{ pathRegex: '/u/[0-9]+' }, { path: '/u/42' }],
    [{ pathRegex: '/u/[0-9]+' }, { pathRegex: '/u/[0-9]+', methods: ['GET'] }],
    [{ methods: ['GET', 'HEAD'] }, { methods: ['GET'] }],
    [{ headers: [{ name: 'x', match: { kind: 'present', present: true } }] }, { headers: [{ name: 'X', match: { kind: 'exact', value: '1' } }] }],
    [{ headers: [{ name: 'x', match: { kind: 'prefix', value: 'ab' } }] }, { headers: [{ name: 'x', match: { kind: 'exact', value: 'abc' } }] }],
    [{ headers: [{ name: 'x', match: { kind: 'regex', pattern: '[a-c]+' } }] }, { headers: [{ name: 'x', match: { kind: 'exact', value: 'abc' } }] }],
    [{ query: [{ name: 'a', value: '1' }] }, { query: [{ name: 'a', value: '1' }, { name: 'b', value: '2' }] }],
  ];
  for (const [a, b] of yes) t.ok(covers(a, b), `${JSON.stringify(a)} covers ${JSON.stringify(b)}`);
  const no: [RouteMatch, RouteMatch][] = [
    [{ host: 'api.example.com' }, { host: '*.example.com' }],
    [{ host: '*.example.com' }, { host: 'example.com' }],
    [{ host: '*.eu.example.com' }, { host: '*.example.com' }],
    [{ host: 'a.com' }, {}],
    [{ pathPrefix: '/v1' }, { pathPrefix: '/v10' }],
    [{ pathPrefix: '/v1/' }, { pathPrefix: '/v1' }],
    [{ pathPrefix: '/v1' }, { pathRegex: '/v1/.*' }],
    [{ path: '/a' }, { pathPrefix: '/a' }],
    [{ pathRegex: '/u/[0-9]+' }, { pathRegex: '/u/[0-9]' }],
    [{ methods: ['GET'] }, {}],
    [{ methods: ['GET'] }, { methods: ['GET', 'POST'] }],
    [{ headers: [{ name: 'x', match: { kind: 'present', present: true } }] }, {}],
    [{ headers: [{ name: 'x', match: { kind: 'present', present: true } }] }, { headers: [{ name: 'x', match: { kind: 'present', present: false } }] }],
    [{ headers: [{ name: 'x', match: { kind: 'exact', value: '1' } }] }, { headers: [{ name: 'y', match: { kind: 'exact', value: '1' } }] }],
    [{ query: [{ name: 'a', value: '1' }] }, { query: [{ name: 'a', value: '2' }] }],
  ];
  for (const [a, b] of no) t.notOk(covers(a, b), `${JSON.stringify(a)} does not cover ${JSON.stringify(b)}`);
});

t.test('skipped routes (invalid ones) neither shadow nor are reported', async (t) => {
  t.same(findShadowed([null, { path: '/x' }, { path: '/x' }]), [{ index: 2, by: 1 }]);
});
