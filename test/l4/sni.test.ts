import t from 'tap';
import { ClientHelloReader, HELLO_MALFORMED, HELLO_MORE, HELLO_NAME, HELLO_NONE } from '../../src/l4/sni.js';
import { captureHello, reframe } from './fixtures/hello.js';

function readAll(bytes: Uint8Array, step = bytes.length): ClientHelloReader {
  const r = new ClientHelloReader();
  for (let i = 0; i < bytes.length && r.status === HELLO_MORE; i += step) r.push(bytes.subarray(i, i + step));
  return r;
}

t.test('real ClientHellos from tls.connect', async (t) => {
  const hello = await captureHello('API.Example.com');
  const r = readAll(hello);
  t.equal(r.status, HELLO_NAME);
  t.equal(r.serverName, 'api.example.com', 'lower-cased');
  t.equal(r.consumed, hello.length, 'the whole first flight is the hello');

  const none = readAll(await captureHello());
  t.equal(none.status, HELLO_NONE, 'no servername: a hello without SNI');
  t.equal(none.serverName, '');
});

t.test('split at every byte position, and fed one byte at a time', async (t) => {
  const hello = await captureHello('db.internal.test');
  for (let cut = 1; cut < hello.length; cut++) {
    const r = new ClientHelloReader();
    const first = r.push(hello.subarray(0, cut));
    if (first !== HELLO_MORE) {
      t.fail(`answered before the end at cut ${cut}`);
      break;
    }
    r.push(hello.subarray(cut));
    if (r.status !== HELLO_NAME || r.serverName !== 'db.internal.test') {
      t.fail(`cut ${cut}: ${r.status} ${r.error}`);
      break;
    }
  }
  const bytewise = readAll(hello, 1);
  t.equal(bytewise.serverName, 'db.internal.test');
  t.pass('every split point reads the same name');
});

t.test('one handshake message over several TLS records', async (t) => {
  const hello = await captureHello('multi.example.org');
  for (const size of [1, 7, 64, 200]) {
    const r = readAll(reframe(hello, size), 3);
    t.equal(r.status, HELLO_NAME, `records of ${size} bytes`);
    t.equal(r.serverName, 'multi.example.org');
  }
});

t.test('truncated input only ever asks for more', async (t) => {
  const hello = await captureHello('trunc.example');
  for (let len = 0; len < hello.length; len++) {
    const r = new ClientHelloReader();
    if (r.push(hello.subarray(0, len)) !== HELLO_MORE) {
      t.fail(`prefix ${len} answered ${r.status}`);
      return;
    }
  }
  t.pass('every proper prefix is MORE');
});

/** Offset of the extensions length in a one-record hello. */
function extensionsAt(b: Buffer): number {
  let p = 5 + 4 + 34;
  p += 1 + b[p]!;
  p += 2 + b.readUInt16BE(p);
  return p + 1 + b[p]!;
}

t.test('malformed records and lengths', async (t) => {
  const hello = await captureHello('bad.example');
  const cases: [string, (b: Buffer) => void, RegExp][] = [
    ['not a handshake record', (b) => (b[0] = 23), /not a handshake/],
    ['record version', (b) => (b[1] = 2), /not TLS/],
    ['record over 2^14', (b) => b.writeUInt16BE(16_385, 3), /over 2\^14/],
    ['empty record', (b) => b.writeUInt16BE(0, 3), /empty/],
    ['not a ClientHello', (b) => (b[5] = 2), /not a ClientHello/],
    ['hello over the bound', (b) => b.writeUIntBE(0x100000, 6, 3), /over the/],
    ['session id too long', (b) => (b[5 + 4 + 34] = 33), /session id/],
    ['extensions length', (b) => b.writeUInt16BE(b.readUInt16BE(extensionsAt(b)) + 1, extensionsAt(b)), /extensions length/],
    ['cipher suites odd', (b) => b.writeUInt16BE(3, 5 + 4 + 35 + b[5 + 4 + 34]!), /cipher_suites/],
  ];
  for (const [name, mutate, reason] of cases) {
    const b = Buffer.from(hello);
    mutate(b);
    const r = readAll(b, 5);
    t.equal(r.status === HELLO_MORE ? 'more' : r.status, HELLO_MALFORMED, name);
    t.match(r.error, reason, name);
  }
  // An SSLv2-style hello and plain HTTP are not TLS records at all.
  t.equal(readAll(Buffer.from('GET / HTTP/1.1\r\n\r\n')).status, HELLO_MALFORMED);
  t.equal(readAll(Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01])).status, HELLO_MALFORMED);
});

t.test('hand-built hellos: SNI edge cases', async (t) => {
  const build = (exts: Buffer | null): Buffer => {
    const parts: Buffer[] = [Buffer.from([3, 3]), Buffer.alloc(32), Buffer.from([0]), Buffer.from([0, 2, 0x13, 0x01]), Buffer.from([1, 0])];
    if (exts) parts.push(Buffer.from([exts.length >> 8, exts.length & 255]), exts);
    const body = Buffer.concat(parts);
    const hs = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 255]), body]);
    return Buffer.concat([Buffer.from([22, 3, 1, hs.length >> 8, hs.length & 255]), hs]);
  };
  const sni = (...entries: [number, string][]): Buffer => {
    const list = Buffer.concat(entries.map(([type, name]) => Buffer.concat([Buffer.from([type, 0, name.length]), Buffer.from(name, 'latin1')])));
    const data = Buffer.concat([Buffer.from([list.length >> 8, list.length & 255]), list]);
    return Buffer.concat([Buffer.from([0, 0, data.length >> 8, data.length & 255]), data]);
  };
  t.equal(readAll(build(null)).status, HELLO_NONE, 'no extensions block');
  t.equal(readAll(build(Buffer.alloc(0))).status, HELLO_NONE, 'empty extensions block');
  const r = readAll(build(sni([0, 'a.example'])));
  t.equal(r.serverName, 'a.example');
  t.equal(readAll(build(sni([1, 'other'], [0, 'b.example']))).serverName, 'b.example', 'unknown name types are skipped');
  t.equal(readAll(build(sni([1, 'other']))).status, HELLO_NONE, 'no host_name entry');
  t.equal(readAll(build(sni([0, 'bad name']))).status, HELLO_MALFORMED, 'space in a host name');
  t.equal(readAll(build(sni([0, 'caf\u00e9']))).status, HELLO_MALFORMED, '8-bit byte');
  t.equal(readAll(build(Buffer.concat([sni([0, 'a']), sni([0, 'b'])]))).status, HELLO_MALFORMED, 'two server_name extensions');
  t.equal(readAll(build(Buffer.from([0, 0, 0, 0]))).status, HELLO_MALFORMED, 'empty server_name extension');
});

t.test('fuzz: random garbage and mutated hellos never throw and stay bounded', async (t) => {
  const hello = await captureHello('fuzz.example');
  let seed = 12345;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const seen = new Set<number>();
  for (let round = 0; round < 3000; round++) {
    let b: Buffer;
    if (round % 3 === 0) {
      b = Buffer.alloc(1 + rand(600));
      for (let i = 0; i < b.length; i++) b[i] = rand(256);
      if (rand(2)) b[0] = 22;
    } else {
      b = Buffer.from(hello);
      for (let k = 0, flips = 1 + rand(4); k < flips; k++) b[rand(b.length)] = rand(256);
    }
    const r = readAll(b, 1 + rand(50));
    seen.add(r.status);
    t.ok(r.consumed <= b.length, 'never reads past its input');
  }
  t.ok(seen.has(HELLO_MALFORMED) && seen.has(HELLO_MORE), `statuses seen: ${[...seen]}`);
});
