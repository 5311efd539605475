// Weighted splits: ratios follow the weights, a split key keeps one user in one pool, and the
// choice is a pure function of its inputs.

import t from 'tap';
import { cookieValueHash, SplitChooser, splitProblems } from '../../src/model/split.js';
import { hashString } from '../../src/model/hash.js';
import { rng } from '../helpers/rng.js';

const none = { header: () => '' };
const headers = (map: Record<string, string>) => ({ header: (name: string) => map[name] ?? '' });

t.test('per request: 90/10 within ±3 points over 2,000 picks', async (t) => {
  const split = new SplitChooser([{ pool: 'web', weight: 90 }, { pool: 'web-canary', weight: 10 }], null);
  const random = rng(7);
  let canary = 0;
  for (let i = 0; i < 2000; i++) if (split.pick(none, random()) === 'web-canary') canary++;
  t.ok(Math.abs((canary / 2000) * 100 - 10) <= 3, `canary share ${((canary / 2000) * 100).toFixed(1)}%`);
});

t.test('deterministic: the point in [0,1) decides; zero weights get nothing', async (t) => {
  const split = new SplitChooser([{ pool: 'a', weight: 1 }, { pool: 'off', weight: 0 }, { pool: 'b', weight: 3 }], null);
  t.equal(split.indexAt(0), 0);
  t.equal(split.indexAt(0.2499), 0);
  t.equal(split.indexAt(0.25), 2);
  t.equal(split.indexAt(0.9999999), 2);
  t.equal(split.indexAt(1), 2, 'rounding up to 1 still lands on a weighted target');
  for (let u = 0; u < 1; u += 0.001) t.not(split.indexAt(u), 1);
});

t.test('sticky by header: the same key always lands in the same pool; keys spread by weight', async (t) => {
  const split = new SplitChooser([{ pool: 'web', weight: 90 }, { pool: 'web-canary', weight: 10 }], { kind: 'header', name: 'X-User' });
  const random = rng(11);
  for (const user of ['alice', 'bob', 'carol', 'u-123']) {
    const first = split.pick(headers({ 'x-user': user }), random());
    for (let i = 0; i < 50; i++) t.equal(split.pick(headers({ 'x-user': user }), random()), first);
  }
  let canary = 0;
  for (let i = 0; i < 2000; i++) if (split.pick(headers({ 'x-user': `user-${i}` }), 0) === 'web-canary') canary++;
  t.ok(Math.abs((canary / 2000) * 100 - 10) <= 3, `canary share over 2,000 keys ${((canary / 2000) * 100).toFixed(1)}%`);
  t.equal(split.stickyPoint(none), -1, 'no key: not sticky');
  t.equal(split.pick(none, 0.95), 'web-canary', 'no key: the random number decides');
});

t.test('sticky by cookie', async (t) => {
  const split = new SplitChooser([{ pool: 'a', weight: 1 }, { pool: 'b', weight: 1 }], { kind: 'cookie', name: 'sid' });
  const pickFor = (cookie: string, r: number) => split.pick(headers({ cookie }), r);
  const chosen = pickFor('theme=dark; sid=abc123', 0);
  t.equal(pickFor('sid=abc123', 0.99), chosen);
  t.equal(pickFor('sid="abc123"; x=1', 0.5), chosen, 'quotes are not part of the value');
  t.equal(cookieValueHash('a=1; sid=abc123', 'sid'), hashString('abc123'));
  t.equal(cookieValueHash('xsid=abc; sid2=x', 'sid'), -1, 'whole names only');
  t.equal(cookieValueHash('sid=; a=1', 'sid'), -1, 'an empty value counts as absent');
  t.equal(cookieValueHash('', 'sid'), -1);
});

t.test('split problems', async (t) => {
  t.match(splitProblems([], null), [/at least one/]);
  t.match(splitProblems([{ pool: 'a', weight: 0 }], null), [/add up to 0/]);
  t.match(splitProblems([{ pool: 'a', weight: -1 }, { pool: 'b', weight: 1 }], null), [/\[0\]\.weight/]);
  t.match(splitProblems([{ pool: 'a', weight: 1 }, { pool: 'a', weight: 1 }], null), [/\[1\]\.pool: "a" is already target 0/]);
  t.match(splitProblems([{ pool: 'a', weight: 1 }], { kind: 'header', name: 'bad name' }), [/split_key/]);
});
