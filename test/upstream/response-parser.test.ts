// ResponseParser on its own: every well-formed response gives the same result however its bytes are
// split (whole, one byte at a time, and in two pieces at every split point), and every malformed
// one is a ParseError, never a guess.

import t, { type Test } from 'tap';
import { Framing, ParseError, ResponseParser, type FramingKind, type ResponseSink } from '../../src/upstream/response-parser.js';

/** Everything a sink saw, in a form that compares structurally. */
interface Seen {
  heads: Array<[status: number, reason: string, headers: string[], framing: FramingKind, contentLength: number]>;
  body: string;
  completes: boolean[];
  /** Call order: H head, B body (runs collapsed), F finish() called by the test, C complete. */
  order: string;
}

function recorder(seen: Seen): ResponseSink {
  const mark = (c: string): void => {
    if (!(c === 'B' && seen.order.endsWith('B'))) seen.order += c;
  };
  return {
    onHead(status, reason, headers, framing, contentLength) {
      mark('H');
      seen.heads.push([status, reason, headers, framing, contentLength]);
    },
    onBody(chunk) {
      mark('B');
      seen.body += chunk.toString('latin1');
      return true;
    },
    onComplete(keepAlive) {
      mark('C');
      seen.completes.push(keepAlive);
    },
  };
}

interface RunOptions {
  isHead?: boolean;
  /** Call finish() after the last piece (the backend closed the connection). */
  finish?: boolean;
}

/** Feeds `pieces` to a fresh parser; throws whatever the parser throws, with what was seen attached. */
function run(pieces: Buffer[], opts: RunOptions = {}): Seen {
  const seen: Seen = { heads: [], body: '', completes: [], order: '' };
  const parser = new ResponseParser();
  parser.reset(recorder(seen), opts.isHead ?? false);
  try {
    for (const piece of pieces) parser.execute(piece);
    if (opts.finish) {
      seen.order += 'F';
      parser.finish();
    }
  } catch (err) {
    (err as { seen?: Seen }).seen = seen;
    throw err;
  }
  return seen;
}

/** Whole, one byte at a time, then two pieces at every split point. */
function* feeds(raw: Buffer): Generator<[string, Buffer[]]> {
  yield ['whole', [raw]];
  yield ['bytewise', Array.from(raw, (b) => Buffer.from([b]))];
  for (let i = 1; i < raw.length; i++) yield [`split@${i}`, [raw.subarray(0, i), raw.subarray(i)]];
}

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

/** The response parses to `expected` at every split. Failing splits are listed (first few). */
function parsesEverywhere(t: Test, raw: string, expected: Seen, opts: RunOptions = {}): void {
  const buf = bytes(raw);
  t.strictSame(run([buf], opts), expected, 'whole response');
  const wrong: Array<{ feed: string; got: Seen | string }> = [];
  let feedsTried = 0;
  for (const [feed, pieces] of feeds(buf)) {
    feedsTried++;
    let got: Seen | string;
    try {
      got = run(pieces, opts);
    } catch (err) {
      got = `threw ${String(err)}`;
    }
    if (JSON.stringify(got) !== JSON.stringify(expected) && wrong.length < 3) wrong.push({ feed, got });
  }
  t.equal(feedsTried, buf.length + 1, 'whole, bytewise and every two-piece split were tried');
  t.strictSame(wrong, [], 'same result at every split');
}

/** The response is a ParseError at every split, with nothing completed. */
function rejectsEverywhere(t: Test, raw: string, message: RegExp, opts: RunOptions = {}): void {
  const buf = bytes(raw);
  const wrong: Array<{ feed: string; got: string }> = [];
  for (const [feed, pieces] of feeds(buf)) {
    let got: string;
    try {
      const seen = run(pieces, opts);
      got = `accepted: ${JSON.stringify(seen)}`;
    } catch (err) {
      const seen = (err as { seen?: Seen }).seen;
      if (!(err instanceof ParseError)) got = `threw a non-ParseError: ${String(err)}`;
      else if (!message.test(err.message)) got = `wrong message: ${err.message}`;
      else if (seen && seen.completes.length > 0) got = 'completed before failing';
      else continue;
    }
    if (wrong.length < 3) wrong.push({ feed, got });
  }
  t.strictSame(wrong, [], `${JSON.stringify(raw.slice(0, 60))} is a ParseError at every split`);
}

function seen(head: Seen['heads'][number] | null, body: string, completes: boolean[], order: string): Seen {
  return { heads: head ? [head] : [], body, completes, order };
}

t.test('well-formed responses, split at every byte boundary', async (t) => {
  t.test('Content-Length body', async (t) => {
    parsesEverywhere(
      t,
      'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world',
      seen([200, 'OK', ['content-type', 'text/plain', 'content-length', '11'], Framing.LENGTH, 11], 'hello world', [true], 'HBC'),
    );
  });

  t.test('chunked with chunk extensions and trailers', async (t) => {
    parsesEverywhere(
      t,
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
        '5;foo=bar\r\nhello\r\n' +
        '6 ; a=1;b="x y"\r\n world\r\n' +
        'a\r\n0123456789\r\n' +
        '0;last\r\nX-Checksum: abc\r\nX-Other: d\r\n\r\n',
      seen([200, 'OK', ['transfer-encoding', 'chunked'], Framing.CHUNKED, -1], 'hello world0123456789', [true], 'HBC'),
    );
  });

  t.test('chunked with no trailers and no data', async (t) => {
    parsesEverywhere(
      t,
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      seen([200, 'OK', ['transfer-encoding', 'chunked'], Framing.CHUNKED, -1], '', [true], 'HC'),
    );
  });

  t.test('close-delimited: complete only once finish() is called, never reusable', async (t) => {
    parsesEverywhere(
      t,
      'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nthe body runs to the end of the connection',
      seen(
        [200, 'OK', ['content-type', 'text/plain'], Framing.CLOSE, -1],
        'the body runs to the end of the connection',
        [false],
        'HBFC',
      ),
      { finish: true },
    );
  });

  t.test('100 Continue and 103 Early Hints before the final response', async (t) => {
    parsesEverywhere(
      t,
      'HTTP/1.1 100 Continue\r\n\r\n' +
        'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n' +
        'HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok',
      seen([201, 'Created', ['content-length', '2'], Framing.LENGTH, 2], 'ok', [true], 'HBC'),
    );
  });

  t.test('HEAD response: Content-Length reported, no body read', async (t) => {
    parsesEverywhere(
      t,
      'HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n',
      seen([200, 'OK', ['content-length', '1234'], Framing.NONE, 1234], '', [true], 'HC'),
      { isHead: true },
    );
  });

  t.test('204 has no body', async (t) => {
    parsesEverywhere(
      t,
      'HTTP/1.1 204 No Content\r\nX-Id: 7\r\n\r\n',
      seen([204, 'No Content', ['x-id', '7'], Framing.NONE, -1], '', [true], 'HC'),
    );
  });

  t.test('304 has no body even with a Content-Length', async (t) => {
    parsesEverywhere(
      t,
      'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 50\r\n\r\n',
      seen([304, 'Not Modified', ['etag', '"x"', 'content-length', '50'], Framing.NONE, 50], '', [true], 'HC'),
    );
  });

  t.test('Content-Length: 0', async (t) => {
    parsesEverywhere(
      t,
      'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n',
      seen([200, 'OK', ['content-length', '0'], Framing.LENGTH, 0], '', [true], 'HC'),
    );
  });

  t.test('HTTP/1.0 is not kept alive by default', async (t) => {
    parsesEverywhere(
      t,
      'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi',
      seen([200, 'OK', ['content-length', '2'], Framing.LENGTH, 2], 'hi', [false], 'HBC'),
    );
  });

  t.test('HTTP/1.0 with Connection: keep-alive is kept alive', async (t) => {
    parsesEverywhere(
      t,
      'HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nhi',
      seen([200, 'OK', ['connection', 'Keep-Alive', 'content-length', '2'], Framing.LENGTH, 2], 'hi', [true], 'HBC'),
    );
  });

  t.test('HTTP/1.0 without Content-Length is close-delimited', async (t) => {
    parsesEverywhere(t, 'HTTP/1.0 200 OK\r\n\r\nold', seen([200, 'OK', [], Framing.CLOSE, -1], 'old', [false], 'HBFC'), {
      finish: true,
    });
  });

  t.test('HTTP/1.0: close wins over a later keep-alive', async (t) => {
    parsesEverywhere(
      t,
      'HTTP/1.0 200 OK\r\nConnection: close\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi',
      seen(
        [200, 'OK', ['connection', 'close', 'connection', 'keep-alive', 'content-length', '2'], Framing.LENGTH, 2],
        'hi',
        [false],
        'HBC',
      ),
    );
  });

  t.test('Connection: close', async (t) => {
    parsesEverywhere(
      t,
      'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi',
      seen([200, 'OK', ['connection', 'close', 'content-length', '2'], Framing.LENGTH, 2], 'hi', [false], 'HBC'),
    );
  });

  t.test('Transfer-Encoding and Content-Length: chunked wins, no keep-alive', async (t) => {
    parsesEverywhere(
      t,
      'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n',
      seen(
        [200, 'OK', ['content-length', '100', 'transfer-encoding', 'chunked'], Framing.CHUNKED, -1],
        'hi',
        [false],
        'HBC',
      ),
    );
    parsesEverywhere(
      t,
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n2\r\nhi\r\n0\r\n\r\n',
      seen(
        [200, 'OK', ['transfer-encoding', 'chunked', 'content-length', '1'], Framing.CHUNKED, -1],
        'hi',
        [false],
        'HBC',
      ),
    );
  });

  t.test('Transfer-Encoding whose last coding is not chunked is close-delimited', async (t) => {
    parsesEverywhere(
      t,
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nraw',
      seen([200, 'OK', ['transfer-encoding', 'chunked, gzip'], Framing.CLOSE, -1], 'raw', [false], 'HBFC'),
      { finish: true },
    );
  });

  t.test('identical duplicate Content-Length is accepted', async (t) => {
    parsesEverywhere(
      t,
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi',
      seen([200, 'OK', ['content-length', '2', 'content-length', '2'], Framing.LENGTH, 2], 'hi', [true], 'HBC'),
    );
  });

  t.test('status line without reason, header values trimmed of SP and HTAB only', async (t) => {
    parsesEverywhere(
      t,
      'HTTP/1.1 200\r\nX-Spaced: \t padded value \t\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n',
      seen([200, '', ['x-spaced', 'padded value', 'x-empty', '', 'content-length', '0'], Framing.LENGTH, 0], '', [true], 'HC'),
    );
  });

  t.test('12 hex digits is the longest chunk size accepted', async (t) => {
    parsesEverywhere(
      t,
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n000000000002\r\nhi\r\n0\r\n\r\n',
      seen([200, 'OK', ['transfer-encoding', 'chunked'], Framing.CHUNKED, -1], 'hi', [true], 'HBC'),
    );
  });
});

t.test('one parser carries consecutive responses after reset()', async (t) => {
  const parser = new ResponseParser();
  const first: Seen = { heads: [], body: '', completes: [], order: '' };
  const second: Seen = { heads: [], body: '', completes: [], order: '' };
  parser.reset(recorder(first), false);
  t.ok(parser.active, 'active once reset');
  t.notOk(parser.started, 'nothing received yet');
  parser.execute(bytes('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab'));
  t.ok(parser.started);
  parser.execute(bytes('c'));
  t.notOk(parser.active, 'idle after a complete response');
  parser.reset(recorder(second), false);
  parser.execute(bytes('HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n'));
  t.strictSame(first, seen([200, 'OK', ['content-length', '3'], Framing.LENGTH, 3], 'abc', [true], 'HBC'));
  t.strictSame(second, seen([404, 'Not Found', ['transfer-encoding', 'chunked'], Framing.CHUNKED, -1], 'x', [true], 'HBC'));
  t.doesNotThrow(() => parser.finish(), 'finish() after a complete response is not an error');
});

t.test('body pieces are views of the fed buffer, not copies', async (t) => {
  // Not from Buffer's shared pool, so a copy could not share its ArrayBuffer by accident.
  const text = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello';
  const raw = Buffer.alloc(text.length);
  raw.write(text, 'latin1');
  const pieces: Buffer[] = [];
  const parser = new ResponseParser();
  parser.reset(
    {
      onHead() {},
      onBody(chunk) {
        pieces.push(chunk);
        return true;
      },
      onComplete() {},
    },
    false,
  );
  parser.execute(raw);
  t.equal(pieces.length, 1);
  t.equal(pieces[0]!.buffer, raw.buffer, 'same ArrayBuffer');
  t.equal(pieces[0]!.byteOffset, raw.byteOffset + raw.length - 5, 'at the body offset');
});

t.test('a false return from onBody does not lose bytes', async (t) => {
  // The connection pauses the socket; the parser still hands on the rest of the buffer it holds.
  let body = '';
  let completed = false;
  const parser = new ResponseParser();
  parser.reset(
    {
      onHead() {},
      onBody(chunk) {
        body += chunk.toString('latin1');
        return false;
      },
      onComplete() {
        completed = true;
      },
    },
    false,
  );
  parser.execute(bytes('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n'));
  t.equal(body, 'abcd');
  t.ok(completed);
});

t.test('malformed status lines', async (t) => {
  for (const line of [
    'HTTP/1.1 20 OK',
    'HTTP/2 200',
    'HTTP/2 200 OK',
    'FOO',
    'HTTP/1.2 200 OK',
    'http/1.1 200 OK',
    'HTTP/1.1 200OK',
    'HTTP/1.1  200 OK',
    'HTTP/1.1 2x0 OK',
    'HTTP/1.1 099 Low',
    'ICY 200 OK',
  ]) {
    rejectsEverywhere(t, `${line}\r\nContent-Length: 0\r\n\r\n`, /status/);
  }
  rejectsEverywhere(t, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n', /101/);
  rejectsEverywhere(t, 'HTTP/1.1 200 O\0K\r\nContent-Length: 0\r\n\r\n', /reason/);
});

t.test('malformed header lines', async (t) => {
  const head = (line: string): string => `HTTP/1.1 200 OK\r\n${line}\r\nContent-Length: 0\r\n\r\n`;
  rejectsEverywhere(t, head('Bad Name: x'), /header name/);
  rejectsEverywhere(t, head('X-Foo : x'), /header name/);
  rejectsEverywhere(t, head('X(y): z'), /header name/);
  rejectsEverywhere(t, head('\u00e9t\u00e9: summer'), /header name/);
  rejectsEverywhere(t, head(': no name'), /header line/);
  rejectsEverywhere(t, head('no colon at all'), /header line/);
  rejectsEverywhere(t, head('X-Nul: a\0b'), /value/);
  rejectsEverywhere(t, head('X-Cr: a\rb'), /value/);
  rejectsEverywhere(t, head('X-Lf: a\nb'), /value/);
});

t.test('bare CR or LF at the edges of a header value is refused, not trimmed away', async (t) => {
  const head = (line: string): string => `HTTP/1.1 200 OK\r\n${line}\r\nContent-Length: 0\r\n\r\n`;
  rejectsEverywhere(t, head('X-Trailing-Lf: a\n'), /value/);
  rejectsEverywhere(t, head('X-Leading-Lf:\na'), /value/);
  rejectsEverywhere(t, head('X-Trailing-Cr: a\r'), /value/);
  // A lenient reader would frame this body with 5 and end the head at the bare LF.
  rejectsEverywhere(t, 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\r\n\r\nhello', /content-length|value/);
});

t.test('obs-fold continuation line', async (t) => {
  rejectsEverywhere(t, 'HTTP/1.1 200 OK\r\nX-Long: one\r\n two\r\nContent-Length: 0\r\n\r\n', /header/);
  rejectsEverywhere(t, 'HTTP/1.1 200 OK\r\nX-Long: one\r\n\ttwo: three\r\nContent-Length: 0\r\n\r\n', /header/);
});

t.test('Content-Length: differing duplicates and non-numeric values', async (t) => {
  rejectsEverywhere(t, 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!', /differing content-length/);
  for (const value of ['abc', '-1', '+5', '1e3', '0x10', '5, 5', '5 5', '', '1234567890123456']) {
    rejectsEverywhere(t, `HTTP/1.1 200 OK\r\nContent-Length: ${value}\r\n\r\n`, /bad content-length/);
  }
});

t.test('bad chunk sizes', async (t) => {
  const chunked = (body: string): string => `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${body}`;
  for (const size of ['zz', '0000000000002', '-1', '', ' 5', '5g', '0x5', '1 2']) {
    rejectsEverywhere(t, chunked(`${size}\r\nhello\r\n0\r\n\r\n`), /bad chunk size/);
  }
  // Long, so the whole and bytewise feeds only: every split would cost more than it finds.
  const long = bytes(chunked(`${'1'.repeat(5000)}\r\n`));
  t.throws(() => run([long]), /too long/);
  t.throws(() => run(Array.from(long, (b) => Buffer.from([b]))), /too long/);
});

t.test('missing CRLF after chunk data', async (t) => {
  const chunked = (body: string): string => `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${body}`;
  rejectsEverywhere(t, chunked('5\r\nhelloX\r\n0\r\n\r\n'), /not followed by CRLF/);
  rejectsEverywhere(t, chunked('5\r\nhello0\r\n\r\n'), /not followed by CRLF/);
  // A chunk longer than declared.
  rejectsEverywhere(t, chunked('3\r\nhello\r\n0\r\n\r\n'), /not followed by CRLF/);
});

t.test('bare LF or CR in chunk framing', async (t) => {
  const chunked = (body: string): string => `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${body}`;
  rejectsEverywhere(t, chunked('5\nhello\r\n0\r\n\r\n'), /bare LF/);
  rejectsEverywhere(t, chunked('5\r\nhello\n0\r\n\r\n'), /bare LF/);
  rejectsEverywhere(t, chunked('5\r\nhello\r\n0\n\r\n'), /bare LF/);
  rejectsEverywhere(t, chunked('5\r\nhello\r\n0\r\n\n'), /bare LF/);
  rejectsEverywhere(t, chunked('5\r\nhello\r\n0\r\nX-T: y\n\r\n'), /bare LF/);
  rejectsEverywhere(t, chunked('5\r\r\nhello\r\n0\r\n\r\n'), /bare CR|bad chunk size/);
  rejectsEverywhere(t, chunked('5;a\rb\r\nhello\r\n0\r\n\r\n'), /bare CR/);
  rejectsEverywhere(t, chunked('5\r\nhello\r\n0\r\nX-T: a\rb\r\n\r\n'), /bare CR/);
});

t.test('response head limit is 64 KiB, whatever the split', async (t) => {
  const LIMIT = 64 * 1024;
  /** A head whose length up to (not including) the final CRLFCRLF is exactly `n`. */
  const headOf = (n: number): Buffer => {
    const prefix = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: ';
    return bytes(prefix + 'a'.repeat(n - prefix.length) + '\r\n\r\n');
  };
  const atLimit = headOf(LIMIT);
  const overLimit = headOf(LIMIT + 1);
  t.equal(atLimit.length, LIMIT + 4);

  // Splitting near the end, where the terminator straddles the pieces, must not change the verdict.
  const nearEnd = (buf: Buffer): Array<[string, Buffer[]]> => {
    const out: Array<[string, Buffer[]]> = [['whole', [buf]]];
    for (let i = buf.length - 8; i < buf.length; i++) out.push([`split@${i}`, [buf.subarray(0, i), buf.subarray(i)]]);
    const kib: Buffer[] = [];
    for (let i = 0; i < buf.length; i += 1024) kib.push(buf.subarray(i, i + 1024));
    out.push(['1 KiB pieces', kib]);
    return out;
  };
  const verdicts = (buf: Buffer): string[] =>
    nearEnd(buf).map(([feed, pieces]) => {
      try {
        const s = run(pieces);
        return `${feed}: ${s.completes.length === 1 ? 'accepted' : 'incomplete'}`;
      } catch (err) {
        return `${feed}: ${err instanceof ParseError && /too large/.test(err.message) ? 'too large' : String(err)}`;
      }
    });
  t.strictSame(
    verdicts(atLimit),
    nearEnd(atLimit).map(([feed]) => `${feed}: accepted`),
    'a head of exactly 64 KiB is accepted at every split',
  );
  t.strictSame(
    verdicts(overLimit),
    nearEnd(overLimit).map(([feed]) => `${feed}: too large`),
    'one byte more is refused at every split',
  );

  // A head that never ends is refused once it passes the limit, without waiting for the terminator.
  const parser = new ResponseParser();
  parser.reset(recorder({ heads: [], body: '', completes: [], order: '' }), false);
  parser.execute(bytes('HTTP/1.1 200 OK\r\n'));
  const line = bytes(`X-Pad: ${'b'.repeat(1000)}\r\n`);
  let fed = 0;
  const err = t.throws(() => {
    for (;;) {
      parser.execute(line);
      fed += line.length;
      if (fed > 2 * LIMIT) break;
    }
  });
  t.type(err, ParseError);
  t.ok(fed <= LIMIT, `refused after ${fed} header bytes`);
});

/**
 * `response` followed by `extra` stray bytes. When the stray bytes arrive in the read that completes
 * the response, it completes as not reusable; when they arrive in a later read, that read is a
 * ParseError (nothing is outstanding). Checked at every split.
 */
function strayBytesEverywhere(t: Test, response: string, extra: string, expected: Seen): void {
  const buf = bytes(response + extra);
  const wrong: Array<{ feed: string; got: string }> = [];
  for (const [feed, pieces] of feeds(buf)) {
    // Which piece completes the response, and does it also carry stray bytes?
    let fed = 0;
    let last = 0;
    while (fed + pieces[last]!.length < response.length) fed += pieces[last++]!.length;
    const sameRead = fed + pieces[last]!.length > response.length;
    const want: Seen = { ...expected, completes: [!sameRead] };
    let got: string;
    try {
      // A connection whose response completed as not reusable is dropped: nothing more is fed.
      const s = run(sameRead ? pieces.slice(0, last + 1) : pieces);
      got = sameRead && JSON.stringify(s) === JSON.stringify(want) ? 'ok' : `accepted: ${JSON.stringify(s)}`;
    } catch (err) {
      const s = (err as { seen?: Seen }).seen;
      got =
        !sameRead && err instanceof ParseError && JSON.stringify(s) === JSON.stringify(want)
          ? 'ok'
          : `threw ${String(err)} after ${JSON.stringify(s)}`;
    }
    if (got !== 'ok' && wrong.length < 3) wrong.push({ feed, got });
  }
  t.strictSame(wrong, [], `${JSON.stringify(response + extra)} at every split`);
}

t.test('bytes after a complete response', async (t) => {
  strayBytesEverywhere(
    t,
    'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi',
    'HTTP/1.1 200 OK\r\n',
    seen([200, 'OK', ['content-length', '2'], Framing.LENGTH, 2], 'hi', [], 'HBC'),
  );
  strayBytesEverywhere(t, 'HTTP/1.1 204 No Content\r\n\r\n', 'X', seen([204, 'No Content', [], Framing.NONE, -1], '', [], 'HC'));
  strayBytesEverywhere(
    t,
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    '\r\n',
    seen([200, 'OK', ['transfer-encoding', 'chunked'], Framing.CHUNKED, -1], '', [], 'HC'),
  );
  t.doesNotThrow(() => {
    const parser = new ResponseParser();
    parser.reset(recorder({ heads: [], body: '', completes: [], order: '' }), false);
    parser.execute(bytes('HTTP/1.1 204 No Content\r\n\r\n'));
    parser.execute(Buffer.alloc(0));
  }, 'an empty read after the response is not a stray byte');
});

t.test('truncated responses are a ParseError on finish()', async (t) => {
  rejectsEverywhere(t, 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello', /closed before/, { finish: true });
  rejectsEverywhere(t, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel', /closed before/, { finish: true });
  rejectsEverywhere(t, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n', /closed before/, {
    finish: true,
  });
  rejectsEverywhere(t, 'HTTP/1.1 200 OK\r\nContent-Le', /closed before/, { finish: true });
  rejectsEverywhere(t, 'HTTP/1.1 100 Continue\r\n\r\n', /closed before/, { finish: true });
  const parser = new ResponseParser();
  parser.reset(recorder({ heads: [], body: '', completes: [], order: '' }), false);
  t.throws(() => parser.finish(), ParseError, 'closed before any byte');
});

t.test('header names: common ones in any case, near misses and the rest come out lower-cased as sent', async (t) => {
  const names = ['CoNtEnT-TyPe', 'content-typf', 'X-Content-Type', 'DATE', 'Datf', 'set-cookie', 'Set-Cookiez', 'ETag', 'Strict-Transport-Security', 'x-Custom_1'];
  const head = `HTTP/1.1 200 OK\r\n${names.map((n, i) => `${n}: v${i}`).join('\r\n')}\r\nContent-Length: 0\r\n\r\n`;
  const got = run([bytes(head)]);
  const want = names.flatMap((n, i) => [n.toLowerCase(), `v${i}`]).concat(['content-length', '0']);
  t.strictSame(got.heads[0]![2], want);
});

t.test('a bare CR or LF anywhere in a header line or the reason is refused', async (t) => {
  for (const bad of ['X-A: a\rb', 'X-A: a\nb', 'X-A: ab\r', 'X\r-A: ab', 'X-A\n: ab']) {
    t.throws(() => run([bytes(`HTTP/1.1 200 OK\r\n${bad}\r\nContent-Length: 0\r\n\r\n`)]), ParseError, JSON.stringify(bad));
  }
  t.throws(() => run([bytes('HTTP/1.1 200 O\rK\r\nContent-Length: 0\r\n\r\n')]), /malformed reason phrase/);
});
