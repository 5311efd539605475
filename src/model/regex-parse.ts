// Parser for the regex subset Sluice accepts (see regex.ts for the list). It produces the small
// tree regex-safety.ts analyses, and refuses, with a reason, everything outside the subset: what
// RE2 would refuse (backreferences, lookaround) and what JavaScript reads differently from RE2
// ([]a], POSIX classes, \A, \z), so a pattern means the same thing to its author and to V8.

import * as cs from './charset.js';
import type { CharSet } from './charset.js';

export type RegexNode =
  | { readonly type: 'chars'; readonly set: CharSet }
  /** ^ $ \b \B: match no character. */
  | { readonly type: 'assert' }
  | { readonly type: 'seq'; readonly items: readonly RegexNode[] }
  | { readonly type: 'alt'; readonly options: readonly RegexNode[] }
  | { readonly type: 'group'; readonly body: RegexNode }
  /** max is Infinity for *, + and {n,}. */
  | { readonly type: 'repeat'; readonly body: RegexNode; readonly min: number; readonly max: number };

export interface ParsedRegex {
  readonly root: RegexNode;
  /** Capturing groups, named ones included. */
  readonly groups: number;
}

export class RegexSyntaxError extends Error {
  override readonly name = 'RegexSyntaxError';
  /** 0-based offset in the pattern. */
  readonly position: number;
  constructor(message: string, position: number) {
    super(`${message} (at offset ${position})`);
    this.position = position;
  }
}

/** Longer than any sane route pattern; a longer one is generated or pasted by mistake. */
export const MAX_PATTERN_CHARS = 1024;
/** RE2's own limit on counted repetition. */
export const MAX_REPEAT = 1000;

const NAMED_GROUP = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function parseRegex(pattern: string): ParsedRegex {
  if (pattern.length > MAX_PATTERN_CHARS) throw new RegexSyntaxError(`longer than ${MAX_PATTERN_CHARS} characters`, MAX_PATTERN_CHARS);
  const parser = new Parser(pattern);
  const root = parser.alternation();
  if (parser.pos < pattern.length) throw new RegexSyntaxError('unmatched )', parser.pos);
  return { root, groups: parser.groups };
}

class Parser {
  readonly #src: string;
  pos = 0;
  groups = 0;
  readonly #names = new Set<string>();

  constructor(src: string) {
    this.#src = src;
  }

  #peek(offset = 0): string {
    return this.#src[this.pos + offset] ?? '';
  }

  #fail(message: string, at = this.pos): never {
    throw new RegexSyntaxError(message, at);
  }

  alternation(): RegexNode {
    const options = [this.#sequence()];
    while (this.#peek() === '|') {
      this.pos++;
      options.push(this.#sequence());
    }
    return options.length === 1 ? options[0] : { type: 'alt', options };
  }

  #sequence(): RegexNode {
    const items: RegexNode[] = [];
    while (this.pos < this.#src.length && this.#peek() !== '|' && this.#peek() !== ')') {
      const start = this.pos;
      const atom = this.#atom();
      items.push(this.#quantified(atom, start));
    }
    return items.length === 1 ? items[0] : { type: 'seq', items };
  }

  #quantified(atom: RegexNode, start: number): RegexNode {
    const bounds = this.#quantifier();
    if (bounds === null) return atom;
    if (atom.type === 'assert') this.#fail('nothing to repeat', start);
    if (this.#peek() === '?') this.pos++; // lazy: same language, same analysis
    if (this.#quantifierAhead()) this.#fail('a quantifier cannot follow another; use a group', this.pos);
    return { type: 'repeat', body: atom, min: bounds[0], max: bounds[1] };
  }

  /** True when a quantifier starts at the current position ('{' only when a valid {n,m} follows). */
  #quantifierAhead(): boolean {
    const c = this.#peek();
    if (c === '*' || c === '+' || c === '?') return true;
    return c === '{' && /^\{\d+(,\d*)?\}/.test(this.#src.slice(this.pos));
  }

  /** [min, max] after consuming a quantifier, or null (a '{' that is not one is a literal, as in RE2). */
  #quantifier(): [number, number] | null {
    const c = this.#peek();
    if (c === '*') return this.pos++, [0, Infinity];
    if (c === '+') return this.pos++, [1, Infinity];
    if (c === '?') return this.pos++, [0, 1];
    if (c !== '{') return null;
    const m = /^\{(\d+)(,(\d*))?\}/.exec(this.#src.slice(this.pos));
    if (m === null) return null;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
    if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) this.#fail(`counted repetition above ${MAX_REPEAT}`);
    if (max < min) this.#fail(`repetition {${m[1]},${m[3]}} has its bounds the wrong way round`);
    this.pos += m[0].length;
    return [min, max];
  }

  #atom(): RegexNode {
    const c = this.#peek();
    switch (c) {
      case '(':
        return this.#group();
      case '[':
        return { type: 'chars', set: this.#charClass() };
      case '.':
        this.pos++;
        return { type: 'chars', set: cs.DOT };
      case '^':
      case '$':
        this.pos++;
        return { type: 'assert' };
      case '\\':
        return this.#escape();
      case '*':
      case '+':
      case '?':
        return this.#fail('nothing to repeat');
      case '{':
        if (this.#quantifierAhead()) this.#fail('nothing to repeat');
        this.pos++;
        return { type: 'chars', set: cs.single(0x7b) };
      default:
        this.pos++;
        return { type: 'chars', set: cs.single(c.charCodeAt(0)) };
    }
  }

  #group(): RegexNode {
    const open = this.pos;
    this.pos++;
    if (this.#peek() === '?') {
      const rest = this.#src.slice(this.pos, this.pos + 3);
      if (rest.startsWith('?:')) {
        this.pos += 2;
      } else if (rest.startsWith('?=') || rest.startsWith('?!') || rest === '?<=' || rest === '?<!') {
        this.#fail('lookaround assertions are not supported', open);
      } else if (rest.startsWith('?P')) {
        this.#fail('write a named group as (?<name>...)', open);
      } else if (rest.startsWith('?<')) {
        const close = this.#src.indexOf('>', this.pos);
        const name = close < 0 ? '' : this.#src.slice(this.pos + 2, close);
        if (!NAMED_GROUP.test(name)) this.#fail('a group name is letters, digits and _', open);
        if (this.#names.has(name)) this.#fail(`group name "${name}" is used twice`, open);
        this.#names.add(name);
        this.groups++;
        this.pos = close + 1;
      } else {
        this.#fail('flags and other (?...) groups are not supported', open);
      }
    } else {
      this.groups++;
    }
    const body = this.alternation();
    if (this.#peek() !== ')') this.#fail('unclosed (', open);
    this.pos++;
    return { type: 'group', body };
  }

  #escape(): RegexNode {
    const at = this.pos;
    const c = this.#src[this.pos + 1];
    if (c === undefined) this.#fail('a pattern cannot end with \\', at);
    if (c === 'b' || c === 'B') {
      this.pos += 2;
      return { type: 'assert' };
    }
    if (c >= '1' && c <= '9') this.#fail('backreferences are not supported', at);
    if (c === 'k') this.#fail('backreferences are not supported', at);
    return { type: 'chars', set: this.#escapedSet(false) };
  }

  /** The set an escape outside or inside a class stands for; consumes it. */
  #escapedSet(inClass: boolean): CharSet {
    const at = this.pos;
    const c = this.#src[this.pos + 1] ?? '';
    this.pos += 2;
    switch (c) {
      case 'd': return cs.DIGIT;
      case 'D': return cs.complement(cs.DIGIT);
      case 'w': return cs.WORD;
      case 'W': return cs.complement(cs.WORD);
      case 's': return cs.SPACE;
      case 'S': return cs.complement(cs.SPACE);
      case 'n': return cs.single(0x0a);
      case 'r': return cs.single(0x0d);
      case 't': return cs.single(0x09);
      case 'f': return cs.single(0x0c);
      case 'v': return cs.single(0x0b);
      case 'x': return cs.single(this.#hex(2, at));
      case 'u': return cs.single(this.#hex(4, at));
      case '0':
        if (/[0-9]/.test(this.#peek())) this.#fail('octal escapes are not supported', at);
        return cs.single(0);
      default:
        break;
    }
    if (inClass && c === 'b') this.#fail('\\b inside [] is not supported (it means backspace in JavaScript, nothing in RE2)', at);
    if (c === 'A' || c === 'z' || c === 'Z') this.#fail(`\\${c} is not supported; use ^ or $`, at);
    if (c === 'p' || c === 'P') this.#fail('Unicode property classes are not supported', at);
    if (/[A-Za-z0-9]/.test(c)) this.#fail(`unknown escape \\${c}`, at);
    return cs.single(c.charCodeAt(0));
  }

  #hex(digits: number, at: number): number {
    const text = this.#src.slice(this.pos, this.pos + digits);
    if (!new RegExp(`^[0-9A-Fa-f]{${digits}}$`).test(text)) this.#fail(`expected ${digits} hex digits`, at);
    this.pos += digits;
    return parseInt(text, 16);
  }

  #charClass(): CharSet {
    const open = this.pos;
    this.pos++;
    const negated = this.#peek() === '^';
    if (negated) this.pos++;
    if (this.#peek() === ']') this.#fail('an empty class [] or a leading ] is read differently by engines; write \\] for a literal ]', this.pos);
    let flat: number[] = [];
    while (this.#peek() !== ']') {
      if (this.pos >= this.#src.length) this.#fail('unclosed [', open);
      if (this.#peek() === '[' && this.#peek(1) === ':') this.#fail('POSIX classes like [:alpha:] are not supported; use ranges like a-z', this.pos);
      const lo = this.#classAtom();
      if (this.#peek() === '-' && this.#peek(1) !== ']' && this.pos + 1 < this.#src.length) {
        const dash = this.pos;
        this.pos++;
        const hi = this.#classAtom();
        if (lo.length !== 2 || lo[0] !== lo[1] || hi.length !== 2 || hi[0] !== hi[1]) this.#fail('a range needs a single character at each end', dash);
        if (hi[0] < lo[0]) this.#fail('range out of order', dash);
        flat.push(lo[0], hi[0]);
      } else {
        flat = flat.concat(lo);
      }
    }
    this.pos++;
    const set = cs.normalise(flat);
    return negated ? cs.complement(set) : set;
  }

  #classAtom(): CharSet {
    if (this.#peek() === '\\') {
      if (this.pos + 1 >= this.#src.length) this.#fail('a pattern cannot end with \\');
      return this.#escapedSet(true);
    }
    const code = this.#src.charCodeAt(this.pos);
    this.pos++;
    return cs.single(code);
  }
}
