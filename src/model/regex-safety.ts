// Refuses patterns that make a backtracking engine (V8's) take exponential or high-polynomial time.
// RE2 never backtracks; V8 does, so "RE2-style" here means: only patterns for which backtracking
// stays close to linear. The rules, each a known source of blow-up (Weideman et al., "Analyzing
// Matching Time Behavior of Backtracking Regular Expression Matchers by Using Ambiguity of NFA",
// 2016: exponential needs ambiguity under a loop; high polynomial needs adjacent loops):
//
//  1. A repeated part ({n,m} with m > 1, *, +) must not be able to match the empty string: (a*)*.
//  2. Inside a repeated part, no inner quantifier may be ambiguous about where it stops: the
//     characters that can start another round of it must not also start what follows it in the
//     same or the next iteration: (a+)+, (\w+\s?)+, ([a-z]+-?)*, ((a)?a)+.
//  3. Inside a repeated part, the alternatives of a | must start with different characters:
//     (a|ab)+, (\d|[0-9a-f])*. (Outside a loop an overlap costs at most one retry per branch.)
//  4. Two unbounded loops over shared characters must not follow each other with only optional
//     parts between them: \d+\d*, .*.*, a*b?a*.
//
// These are syntactic approximations: some safe patterns are refused (rewrite them with disjoint
// classes), and loops separated by a required literal (/api/.*/users/.*) are accepted, their worst
// case being quadratic in the path length, which SLUICE_MAX_HEADER_BYTES bounds.

import * as cs from './charset.js';
import type { CharSet } from './charset.js';
import type { RegexNode } from './regex-parse.js';

export function safetyProblem(root: RegexNode): string | null {
  try {
    visit(root, cs.EMPTY, false);
    return null;
  } catch (err) {
    if (err instanceof Unsafe) return err.message;
    throw err;
  }
}

class Unsafe extends Error {}

function nullable(node: RegexNode): boolean {
  switch (node.type) {
    case 'chars':
      return false;
    case 'assert':
      return true;
    case 'group':
      return nullable(node.body);
    case 'seq':
      return node.items.every(nullable);
    case 'alt':
      return node.options.some(nullable);
    case 'repeat':
      return node.min === 0 || nullable(node.body);
  }
}

/** Characters that can be the first one a node consumes. */
function first(node: RegexNode): CharSet {
  switch (node.type) {
    case 'chars':
      return node.set;
    case 'assert':
      return cs.EMPTY;
    case 'group':
    case 'repeat':
      return first(node.body);
    case 'alt':
      return node.options.reduce((acc, o) => cs.union(acc, first(o)), cs.EMPTY);
    case 'seq': {
      let acc = cs.EMPTY;
      for (const item of node.items) {
        acc = cs.union(acc, first(item));
        if (!nullable(item)) break;
      }
      return acc;
    }
  }
}

/** Characters of unbounded loops that can run at the start (head) or end (tail) of a node. */
function loops(node: RegexNode, end: 'head' | 'tail'): CharSet {
  switch (node.type) {
    case 'chars':
    case 'assert':
      return cs.EMPTY;
    case 'group':
      return loops(node.body, end);
    case 'repeat': {
      const inner = loops(node.body, end);
      return node.max === Infinity ? cs.union(first(node.body), inner) : inner;
    }
    case 'alt':
      return node.options.reduce((acc, o) => cs.union(acc, loops(o, end)), cs.EMPTY);
    case 'seq': {
      const items = end === 'head' ? node.items : [...node.items].reverse();
      let acc = cs.EMPTY;
      for (const item of items) {
        acc = cs.union(acc, loops(item, end));
        if (!nullable(item)) break;
      }
      return acc;
    }
  }
}

/**
 * `follow`: characters that can come right after `node` (within the innermost loop, its next
 * iteration included). `inLoop`: some enclosing part repeats.
 */
function visit(node: RegexNode, follow: CharSet, inLoop: boolean): void {
  switch (node.type) {
    case 'chars':
    case 'assert':
      return;
    case 'group':
      return visit(node.body, follow, inLoop);
    case 'seq':
      return visitSequence(node.items, follow, inLoop);
    case 'alt':
      if (inLoop) checkAlternatives(node.options, follow);
      for (const option of node.options) visit(option, follow, inLoop);
      return;
    case 'repeat': {
      const repeats = node.max > 1;
      if (repeats && nullable(node.body)) throw new Unsafe('a repeated part can match the empty string, as in (a*)*');
      if (inLoop && node.max > node.min && cs.intersects(first(node.body), follow)) {
        throw new Unsafe('a quantifier inside a repeated group can stop at more than one place, as in (a+)+ or (\\w+\\s?)*');
      }
      visit(node.body, repeats ? cs.union(follow, first(node.body)) : follow, inLoop || repeats);
      return;
    }
  }
}

function visitSequence(items: readonly RegexNode[], follow: CharSet, inLoop: boolean): void {
  // Rule 4, left to right: loops that can still be running when each item starts.
  let open = cs.EMPTY;
  for (const item of items) {
    if (cs.intersects(open, loops(item, 'head'))) {
      throw new Unsafe('two unbounded quantifiers over the same characters follow each other, as in \\d+\\d* or .*.*');
    }
    open = nullable(item) ? cs.union(open, loops(item, 'tail')) : loops(item, 'tail');
  }
  // Follow sets, right to left.
  let after = follow;
  for (let i = items.length - 1; i >= 0; i--) {
    visit(items[i], after, inLoop);
    after = nullable(items[i]) ? cs.union(first(items[i]), after) : first(items[i]);
  }
}

function checkAlternatives(options: readonly RegexNode[], follow: CharSet): void {
  const starts = options.map((o) => (nullable(o) ? cs.union(first(o), follow) : first(o)));
  for (let i = 0; i < starts.length; i++) {
    for (let j = i + 1; j < starts.length; j++) {
      if (cs.intersects(starts[i], starts[j])) {
        throw new Unsafe('alternatives inside a repeated group start with the same characters, as in (a|ab)+');
      }
    }
  }
}
