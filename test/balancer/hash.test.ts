import t from 'tap';
import { NO_HASH, hashBytes, hashString, mix32 } from '../../src/balancer/hash.js';

t.test('hashBytes matches published MurmurHash3 x86_32 vectors', async (t) => {
  const ascii = (s: string) => Buffer.from(s, 'latin1');
  t.equal(hashBytes(ascii(''), 0), 0);
  t.equal(hashBytes(ascii(''), 1), 0x514e28b7);
  t.equal(hashBytes(ascii(''), 0xffffffff), 0x81f16f39);
  t.equal(hashBytes(ascii('\0\0\0\0'), 0), 0x2362f9de);
  t.equal(hashBytes(ascii('test'), 0), 0xba6bd213);
  t.equal(hashBytes(ascii('Hello, world!'), 1234), 0xfaf6cdb3);
  t.equal(hashBytes(ascii('The quick brown fox jumps over the lazy dog'), 0), 0x2e4ff723);
  t.equal(hashBytes(ascii('abc'), 0), 0xb3dd93fa);
});

t.test('hashBytes honours start/end', async (t) => {
  const b = Buffer.from('xxtestyy', 'latin1');
  t.equal(hashBytes(b, 0, 2, 6), hashBytes(Buffer.from('test', 'latin1')));
});

t.test('hashString is murmur3 of the UTF-16LE bytes, any length, any characters', async (t) => {
  for (const s of ['', 'a', 'ab', 'abc', 'abcd', '10.0.0.1', 'session=é🙂', 'x'.repeat(1001)]) {
    for (const seed of [0, 7, 0xdeadbeef]) {
      t.equal(hashString(s, seed), hashBytes(Buffer.from(s, 'utf16le'), seed), `${JSON.stringify(s.slice(0, 12))} seed ${seed}`);
    }
  }
});

t.test('hashes are unsigned 32-bit and never NO_HASH', async (t) => {
  for (let i = 0; i < 10_000; i++) {
    const h = hashString(`key-${i}`);
    if (!(Number.isInteger(h) && h >= 0 && h <= 0xffffffff && h !== NO_HASH)) t.fail(`bad hash ${h}`);
  }
  t.ok(mix32(-1) >= 0);
});

t.test('sequential keys spread evenly over buckets', async (t) => {
  const buckets = new Array(16).fill(0);
  const n = 160_000;
  for (let i = 0; i < n; i++) buckets[hashString(`user-${i}`) >>> 28]++;
  for (const b of buckets) t.ok(Math.abs(b / (n / 16) - 1) < 0.05, `bucket ${b} within 5% of ${n / 16}`);
});
