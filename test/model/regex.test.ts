// The regex subset: what is accepted, what is refused and why, and that accepted patterns stay
// fast on the inputs that make backtracking engines blow up.

import t from 'tap';
import { compileAnchored, compileSearch, regexProblem } from '../../src/model/regex.js';
import { RegexError } from '../../src/model/regex.js';

t.test('accepted: the subset route tables need', async (t) => {
  for (const p of [
    '/v1/.*',
    '/users/(\\d+)',
    '/users/(?<id>[0-9]+)/posts/(?:\\d+)',
    '(foo|bar)+',
    '(?:/[^/]+)*',
    '(\\d{1,3}\\.){3}\\d{1,3}',
    '/api/.*/users/.*',
    '[a-z\\-_]+\\.(png|jpe?g)',
    '\\bword\\B',
    '/x\\x41\\u0042\\t',
    'a{2}b{3,}c{4,5}?',
    'x{',
    '^/anchored$',
  ]) {
    t.equal(regexProblem(p), null, p);
  }
});

t.test('refused: outside RE2 or read differently by V8', async (t) => {
  const cases: [string, RegExp][] = [
    ['(a)\\1', /backreferences/],
    ['(?<n>a)\\k<n>', /backreferences/],
    ['(?=a)b', /lookaround/],
    ['(?!a)b', /lookaround/],
    ['(?<=a)b', /lookaround/],
    ['(?<!a)b', /lookaround/],
    ['(?i)abc', /flags/],
    ['(?P<n>a)', /\(\?<name>/],
    ['[[:alpha:]]', /POSIX/],
    ['[]a]', /write \\]/],
    ['[^]', /write \\]/],
    ['\\Aabc\\z', /use \^ or \$/],
    ['\\p{L}', /Unicode property/],
    ['\\01', /octal/],
    ['\\q', /unknown escape/],
    ['[\\b]', /backspace/],
    ['a**', /quantifier cannot follow/],
    ['a{2}{3}', /quantifier cannot follow/],
    ['*a', /nothing to repeat/],
    ['{2}', /nothing to repeat/],
    ['^*', /nothing to repeat/],
    ['a{1001}', /above 1000/],
    ['a{3,2}', /wrong way round/],
    ['[z-a]', /out of order/],
    ['(', /unclosed \(/],
    ['a)', /unmatched \)/],
    ['[abc', /unclosed \[/],
    ['abc\\', /cannot end with/],
    ['(?<1x>a)', /group name/],
    ['(?<a>x)(?<a>y)', /used twice/],
    ['x'.repeat(1025), /longer than 1024/],
  ];
  for (const [p, why] of cases) t.match(regexProblem(p), why, p.length > 40 ? `${p.slice(0, 20)}…` : p);
});

t.test('refused: what can backtrack catastrophically', async (t) => {
  const cases: [string, RegExp][] = [
    ['(a+)+', /stop at more than one place/],
    ['(a*)*', /empty string/],
    ['(a?)+b', /empty string/],
    ['(\\w+\\s?)*', /stop at more than one place/],
    ['([a-z]+-?)*', /stop at more than one place/],
    ['((a)?a)+', /stop at more than one place/],
    ['(x+x+)+y', /follow each other|stop at more than one place/],
    ['(a|ab)+', /alternatives/],
    ['(a|a){1,30}', /alternatives/],
    ['(\\d|[0-9a-f])*', /alternatives/],
    ['\\d+\\d*', /follow each other/],
    ['.*.*', /follow each other/],
    ['a*b?a*', /follow each other/],
    ['(\\d+)\\d+', /follow each other/],
  ];
  for (const [p, why] of cases) {
    const problem = regexProblem(p);
    t.match(problem, why, p);
    t.match(problem, /catastrophically/, `${p}: says why it matters`);
  }
});

t.test('accepted patterns answer adversarial input', async (t) => {
  // Inputs that defeat each accepted pattern at its last character, the classic worst case. No
  // clock: exponential backtracking on these sizes would not finish before the suite's timeout.
  const cases: [string, string][] = [
    ['(?:/[^/]+)*', `${'/a'.repeat(5000)}/`],
    ['(foo|bar)+', `${'foo'.repeat(5000)}x`],
    ['(\\d{1,3}\\.){3}\\d{1,3}', `${'1.'.repeat(5000)}x`],
    ['/v1/.*x', `/v1/${'a'.repeat(10000)}`],
  ];
  for (const [p, input] of cases) {
    t.equal(compileAnchored(p).test(input), false, p);
  }
});

t.test('compileAnchored anchors; compileSearch finds every match; both refuse outside the subset', async (t) => {
  t.ok(compileAnchored('a|b').test('b'));
  t.notOk(compileAnchored('a|b').test('ab'), 'alternation is anchored as a whole: ^(?:a|b)$');
  t.equal('/a/b/a'.replace(compileSearch('a'), 'x'), '/x/b/x');
  t.throws(() => compileAnchored('(a+)+'), RegexError);
  t.throws(() => compileSearch('(?=x)'), RegexError);
});

t.test('literalPrefix: the text every match starts with, for the route index', async (t) => {
  const { literalPrefix } = await import('../../src/model/regex.js');
  const cases: [string, string][] = [
    ['/users/[0-9]+', '/users/'],
    ['^/users/(\\d+)$', '/users/'],
    ['\\/api\\/v1', '/api/v1'],
    ['/ab?c', '/a'],
    ['/a+b', '/a'],
    ['/a|/b', ''],
    ['(?:/a)', ''],
    ['.*', ''],
    ['/x$', '/x'],
  ];
  for (const [p, want] of cases) t.equal(literalPrefix(p), want, p);
});
