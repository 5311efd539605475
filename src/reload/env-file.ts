// Parser for environment files in systemd's EnvironmentFile= syntax, the file SLUICE_ENV_FILE names
// and SIGHUP re-reads. It reads what systemd reads the same way, and refuses (with the line
// number) what systemd would silently skip or guess at, because a reload must never apply half a
// typo:
//
//   # comment            ; comment            (blank lines too)
//   NAME=value           leading/trailing blanks dropped; \x keeps x; a final \ continues the line
//   NAME = value         blanks around = are allowed
//   NAME="a \"b\" $c"    \" \\ \$ \` are escapes, \ + newline continues, other \x stay as written
//   NAME='literal'       nothing is special inside; may span lines, as "..." may
//
// Refused: a line without "=", a name that is not [A-Za-z_][A-Za-z0-9_]*, `export NAME=...`
// (shell syntax systemd does not understand), text after a closing quote, an unterminated quote,
// NUL bytes and a byte order mark. A name given twice is a warning; the later value wins.

import { readFile } from 'node:fs/promises';

export interface EnvFileIssue {
  /** 1-based line the problem starts on; 0 for the file as a whole. */
  readonly line: number;
  readonly message: string;
}

export type EnvFileResult =
  | { readonly ok: true; readonly vars: Map<string, string>; readonly warnings: EnvFileIssue[] }
  | { readonly ok: false; readonly errors: EnvFileIssue[] };

/** An environment file larger than this is not configuration. */
export const MAX_ENV_FILE_BYTES = 1 << 20;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DOUBLE_QUOTE_ESCAPES = '"\\`$';

export function parseEnvFile(input: string): EnvFileResult {
  const errors: EnvFileIssue[] = [];
  const warnings: EnvFileIssue[] = [];
  const vars = new Map<string, string>();
  const firstSet = new Map<string, number>();
  if (input.charCodeAt(0) === 0xfeff) return fail(1, 'the file starts with a byte order mark; save it as plain UTF-8');
  const nul = input.indexOf('\0');
  if (nul >= 0) return fail(lineAt(input, nul), 'NUL byte');
  // CRLF files (edited on Windows) are read as LF; a lone CR stays a character of the value.
  const text = input.replace(/\r\n/g, '\n');

  let i = 0;
  let line = 1;
  const blank = (c: string | undefined): boolean => c === ' ' || c === '\t';
  const skipBlanks = (): void => {
    while (blank(text[i])) i++;
  };
  const skipLine = (): void => {
    while (i < text.length && text[i] !== '\n') i++;
  };

  while (i < text.length) {
    skipBlanks();
    if (i >= text.length) break;
    const c = text[i];
    if (c === '\n') {
      i++;
      line++;
      continue;
    }
    if (c === '#' || c === ';') {
      skipLine();
      continue;
    }

    const start = line;
    const from = i;
    let name = '';
    while (i < text.length && text[i] !== '=' && text[i] !== '\n' && !blank(text[i])) name += text[i++];
    skipBlanks();
    if (text[i] !== '=') {
      errors.push({
        line: start,
        message: name === 'export' ? '"export" is shell syntax; write NAME=value' : `expected NAME=value, got ${shown(text, from)}`,
      });
      skipLine();
      continue;
    }
    i++; // '='
    skipBlanks();

    const value = readValue();
    if (value === null) continue; // error recorded, rest of the line skipped
    if (!NAME.test(name)) {
      errors.push({ line: start, message: `${JSON.stringify(name)} is not a variable name (letters, digits and _, not starting with a digit)` });
      continue;
    }
    const before = firstSet.get(name);
    if (before !== undefined) warnings.push({ line: start, message: `${name} is also set on line ${before}; this later value wins` });
    else firstSet.set(name, start);
    vars.set(name, value);
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, vars, warnings };

  /** The value at `i`, leaving `i` at the end of its (last) line; null after recording an error. */
  function readValue(): string | null {
    const start = line;
    const quote = text[i];
    if (quote === '"' || quote === "'") {
      i++;
      let value = '';
      for (;;) {
        if (i >= text.length) {
          errors.push({ line: start, message: `unterminated ${quote} quote` });
          return null;
        }
        const c = text[i]!;
        if (c === quote) {
          i++;
          break;
        }
        if (c === '\\' && quote === '"') {
          const next = text[i + 1];
          if (next === '\n') {
            i += 2;
            line++;
            continue;
          }
          if (next !== undefined && DOUBLE_QUOTE_ESCAPES.includes(next)) {
            value += next;
            i += 2;
            continue;
          }
        }
        if (c === '\n') line++;
        value += c;
        i++;
      }
      skipBlanks();
      if (i < text.length && text[i] !== '\n') {
        errors.push({ line, message: 'unexpected text after the closing quote (quote the whole value)' });
        skipLine();
        return null;
      }
      return value;
    }

    // Unquoted: up to the end of the line; quotes inside are ordinary characters, as in systemd.
    let value = '';
    let kept = 0; // length that trailing-blank trimming may not cut into (ends with an escape)
    while (i < text.length && text[i] !== '\n') {
      const c = text[i]!;
      if (c === '\\') {
        const next = text[i + 1];
        if (next === undefined) {
          errors.push({ line, message: 'backslash at the end of the file' });
          return null;
        }
        i += 2;
        if (next === '\n') {
          line++;
          continue;
        }
        value += next;
        kept = value.length;
        continue;
      }
      value += c;
      i++;
    }
    let end = value.length;
    while (end > kept && blank(value[end - 1])) end--;
    return value.slice(0, end);
  }

  function fail(at: number, message: string): EnvFileResult {
    return { ok: false, errors: [{ line: at, message }] };
  }
}

/** The line starting at `from`, quoted, cut at 60 characters. */
function shown(text: string, from: number): string {
  const end = text.indexOf('\n', from);
  const whole = text.slice(from, end < 0 ? text.length : end).trimEnd();
  return JSON.stringify(whole.length > 60 ? `${whole.slice(0, 60)}…` : whole);
}

function lineAt(text: string, index: number): number {
  let n = 1;
  for (let k = 0; k < index; k++) if (text.charCodeAt(k) === 10) n++;
  return n;
}

/** Read and parse `path`; a missing, unreadable or oversized file is one error at line 0. */
export async function readEnvFile(path: string): Promise<EnvFileResult> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? (err as Error).message);
    return { ok: false, errors: [{ line: 0, message: `cannot read ${path}: ${why}` }] };
  }
  if (bytes.length > MAX_ENV_FILE_BYTES) {
    return { ok: false, errors: [{ line: 0, message: `${path} is ${bytes.length} bytes; at most ${MAX_ENV_FILE_BYTES} are read` }] };
  }
  const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  try {
    return parseEnvFile(text.decode(bytes));
  } catch {
    return { ok: false, errors: [{ line: 0, message: `${path} is not valid UTF-8` }] };
  }
}
