// Route regexes (path_regex, header regex, regex_rewrite): validated against an RE2-style subset,
// then compiled to V8 RegExps. What is accepted:
//   literals; . ; classes [a-z], [^/], with \d \w \s \D \W \S inside or outside; escapes \n \r \t
//   \f \v \0 \xHH \uHHHH and \ before any punctuation; anchors ^ $ \b \B; groups (...), (?:...),
//   (?<name>...); alternation |; quantifiers * + ? {n} {n,} {n,m} (m <= 1000), each optionally
//   lazy (*?).
// Refused: backreferences (\1, \k<name>), lookaround ((?=, (?!, (?<=, (?<!), flags ((?i)),
// possessive or stacked quantifiers, \p{..}, POSIX [:alpha:], \A \z, octal escapes, [] and [^],
// and the patterns regex-safety.ts explains that can backtrack catastrophically.
// Matching patterns are anchored as ^(?:pattern)$: they must match the whole path or value.

import { parseRegex, RegexSyntaxError, type ParsedRegex, type RegexNode } from './regex-parse.js';
import { safetyProblem } from './regex-safety.js';

export { MAX_PATTERN_CHARS, MAX_REPEAT } from './regex-parse.js';

/** Why `pattern` is refused, or null when it is in the subset and safe. */
export function regexProblem(pattern: string): string | null {
  let parsed: ParsedRegex;
  try {
    parsed = parseRegex(pattern);
  } catch (err) {
    if (err instanceof RegexSyntaxError) return err.message;
    throw err;
  }
  const unsafe = safetyProblem(parsed.root);
  if (unsafe !== null) return `${unsafe}: it could backtrack catastrophically`;
  // The subset is meant to be a subset of V8's syntax too; a failure here is a parser bug.
  try {
    new RegExp(pattern);
  } catch (err) {
    return (err as Error).message;
  }
  return null;
}

export class RegexError extends Error {
  override readonly name = 'RegexError';
  readonly pattern: string;
  constructor(pattern: string, problem: string) {
    super(`regex ${JSON.stringify(pattern)}: ${problem}`);
    this.pattern = pattern;
  }
}

/** Capturing groups in a valid pattern (what $1..$N of a substitution may name). */
export function captureCount(pattern: string): number {
  return parseRegex(pattern).groups;
}

/** For matching: the whole input must match. Throws RegexError outside the subset. */
export function compileAnchored(pattern: string): RegExp {
  assertValid(pattern);
  return new RegExp(`^(?:${pattern})$`);
}

/** For rewriting: every match in the input (a global search). Throws RegexError outside the subset. */
export function compileSearch(pattern: string): RegExp {
  assertValid(pattern);
  return new RegExp(pattern, 'g');
}

function assertValid(pattern: string): void {
  const problem = regexProblem(pattern);
  if (problem !== null) throw new RegexError(pattern, problem);
}

/**
 * The literal text every match of a valid pattern starts with ("/users/" for "/users/[0-9]+"), or
 * '' when it can start with anything. Lets the route index file a path regex under a prefix, so it
 * is only tried for paths that could match it.
 */
export function literalPrefix(pattern: string): string {
  const root = parseRegex(pattern).root;
  const items: readonly RegexNode[] = root.type === 'seq' ? root.items : [root];
  let prefix = '';
  for (const item of items) {
    if (item.type === 'assert' && prefix === '') continue; // a leading ^
    const set = item.type === 'chars' ? item.set : item.type === 'repeat' && item.min >= 1 && item.body.type === 'chars' ? item.body.set : null;
    if (set === null || set.length !== 2 || set[0] !== set[1]) break;
    prefix += String.fromCharCode(set[0]);
    if (item.type === 'repeat') break; // a+ : one a is certain, the rest is not literal
  }
  return prefix;
}
