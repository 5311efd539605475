// The EnvironmentFile= parser: what systemd reads is read the same way; what systemd would skip
// or guess at is refused with its line number.

import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnvFile, readEnvFile, type EnvFileResult } from '../../src/reload/env-file.js';

function vars(text: string): Record<string, string> {
  const r = parseEnvFile(text);
  if (!r.ok) throw new Error(`unexpected errors: ${JSON.stringify(r.errors)}`);
  return Object.fromEntries(r.vars);
}

function errors(text: string): { line: number; message: string }[] {
  const r = parseEnvFile(text);
  if (r.ok) throw new Error(`accepted: ${JSON.stringify(Object.fromEntries(r.vars))}`);
  return r.errors;
}

t.test('names, values, comments and blank lines', async (t) => {
  t.same(
    vars('# Sluice\n\nSLUICE_WORKERS=4\n  ; also a comment\nSLUICE_UPSTREAMS=http://a:1,http://b:2\n\t\n'),
    { SLUICE_WORKERS: '4', SLUICE_UPSTREAMS: 'http://a:1,http://b:2' },
  );
  t.same(vars(''), {});
  t.same(vars('A=1'), { A: '1' }, 'no final newline');
  t.same(vars('_a9=x\nB='), { _a9: 'x', B: '' }, 'empty value');
  t.same(vars('A = spaced \nB\t=\tx'), { A: 'spaced', B: 'x' }, 'blanks around = and at the ends are dropped');
  t.same(vars('A=x  y  z'), { A: 'x  y  z' }, 'inner blanks are kept');
  t.same(vars('A=a # not a comment'), { A: 'a # not a comment' }, '# after the value is part of it');
  t.same(vars('A=1\r\nB=2\r\n'), { A: '1', B: '2' }, 'CRLF line ends');
});

t.test('unquoted values: backslashes and continuations', async (t) => {
  t.same(vars('A=a\\\\b'), { A: 'a\\b' });
  t.same(vars('A=\\$HOME'), { A: '$HOME' }, 'no expansion, and \\x keeps x');
  t.same(vars('A=one\\\n  two\nB=3'), { A: 'one  two', B: '3' }, 'a final backslash joins the next line');
  t.same(vars('A=x\\ '), { A: 'x ' }, 'an escaped blank at the end is kept');
  t.same(vars('A=it"s'), { A: 'it"s' }, 'quotes after the first character are ordinary');
});

t.test('double quotes', async (t) => {
  t.same(vars('A="  padded  "'), { A: '  padded  ' });
  t.same(vars('A="say \\"hi\\" \\\\ \\$x \\`y\\`"'), { A: 'say "hi" \\ $x `y`' });
  t.same(vars('A="keep \\n and \\t"'), { A: 'keep \\n and \\t' }, 'other escapes stay as written');
  t.same(vars('A="two\nlines"\nB=1'), { A: 'two\nlines', B: '1' }, 'may span lines');
  t.same(vars('A="joined \\\nhere"'), { A: 'joined here' }, 'backslash-newline continues');
  t.same(vars('A="x"   \nB=2'), { A: 'x', B: '2' }, 'blanks after the closing quote are dropped');
  t.same(vars('A=""'), { A: '' });
});

t.test("single quotes are literal", async (t) => {
  t.same(vars("A='a \\ \" $b'"), { A: 'a \\ " $b' });
  t.same(vars("A='x\ny'"), { A: 'x\ny' });
});

t.test('a name set twice: the later value wins, with a warning naming both lines', async (t) => {
  const r = parseEnvFile('A=1\nB=2\nA=3\n');
  t.ok(r.ok);
  if (!r.ok) return;
  t.equal(r.vars.get('A'), '3');
  t.same(r.warnings, [{ line: 3, message: 'A is also set on line 1; this later value wins' }]);
});

t.test('refused, each with the line it starts on', async (t) => {
  t.same(errors('A=1\nJUST_A_NAME\n'), [{ line: 2, message: 'expected NAME=value, got "JUST_A_NAME"' }]);
  t.same(errors('  BAD LINE here  '), [{ line: 1, message: 'expected NAME=value, got "BAD LINE here"' }]);
  t.match(errors('export A=1'), [{ line: 1, message: /"export" is shell syntax/ }]);
  t.match(errors('1A=x'), [{ line: 1, message: /"1A" is not a variable name/ }]);
  t.match(errors('A-B=x'), [{ line: 1, message: /"A-B" is not a variable name/ }]);
  t.match(errors('=x'), [{ line: 1, message: /"" is not a variable name/ }]);
  t.match(errors('A=1\nB="open\nC=2\n'), [{ line: 2, message: /unterminated " quote/ }]);
  t.match(errors("B='open"), [{ line: 1, message: /unterminated ' quote/ }]);
  t.match(errors('A="x"y'), [{ line: 1, message: /after the closing quote/ }]);
  t.match(errors('A=x\\'), [{ line: 1, message: /backslash at the end of the file/ }]);
  t.match(errors('A=1\nB=\0'), [{ line: 2, message: /NUL/ }]);
  t.match(errors('\ufeffA=1'), [{ line: 1, message: /byte order mark/ }]);
});

t.test('every bad line is reported, not only the first', async (t) => {
  const found = errors('BAD LINE\nOK=1\n2X=y\nALSO BAD\n');
  t.same(found.map((e) => e.line), [1, 3, 4]);
});

t.test('readEnvFile: reads a file, names a missing or non-UTF-8 one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-env-'));
  const good = join(dir, 'sluice.env');
  writeFileSync(good, 'SLUICE_WORKERS=2\n');
  const r: EnvFileResult = await readEnvFile(good);
  t.ok(r.ok);
  if (r.ok) t.equal(r.vars.get('SLUICE_WORKERS'), '2');

  const missing = await readEnvFile(join(dir, 'nope.env'));
  t.match(missing, { ok: false, errors: [{ line: 0, message: /cannot read .*nope\.env: no such file/ }] });

  const latin1 = join(dir, 'latin1.env');
  writeFileSync(latin1, Buffer.from([0x41, 0x3d, 0xe9, 0x0a]));
  t.match(await readEnvFile(latin1), { ok: false, errors: [{ line: 0, message: /not valid UTF-8/ }] });
});
