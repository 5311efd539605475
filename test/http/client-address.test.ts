// The client address as X-Forwarded-For shows it: IPv4 dotted, IPv4-mapped IPv6 as IPv4, and IPv6
// in RFC 5952 form (lower case, leading zeros dropped, the longest run of two or more zero groups
// compressed, the first on a tie). Only IPv4 clients reach the proxy in the integration tests, so
// the IPv6 forms are checked here, on the bytes uWS hands over.

import t from 'tap';
import { isIP } from 'node:net';
import type { HttpResponse } from 'uWebSockets.js';
import { clientAddress, formatAddress } from '../../src/http/client-address.js';

/** The 16 bytes of an IPv6 address written as 8 groups. */
function v6(...groups: number[]): Uint8Array {
  const b = new Uint8Array(16);
  groups.forEach((g, i) => {
    b[2 * i] = g >> 8;
    b[2 * i + 1] = g & 0xff;
  });
  return b;
}

t.test('IPv4, and IPv4 mapped into IPv6', async (t) => {
  t.equal(formatAddress(Uint8Array.of(127, 0, 0, 1)), '127.0.0.1');
  t.equal(formatAddress(Uint8Array.of(203, 0, 113, 255)), '203.0.113.255');
  t.equal(formatAddress(v6(0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201)), '192.0.2.1', '::ffff:192.0.2.1');
  t.not(formatAddress(v6(0, 0, 0, 0, 1, 0xffff, 0xc000, 0x0201)), '192.0.2.1', 'not mapped unless the first 80 bits are zero');
});

t.test('IPv6 in RFC 5952 form', async (t) => {
  const cases: [Uint8Array, string, string?][] = [
    [v6(0, 0, 0, 0, 0, 0, 0, 1), '::1'],
    [v6(0, 0, 0, 0, 0, 0, 0, 0), '::'],
    [v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), '2001:db8::1'],
    [v6(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1), '2001:db8:0:1:1:1:1:1', 'a single zero group is not compressed (§4.2.2)'],
    [v6(0x2001, 0, 0, 1, 0, 0, 0, 1), '2001:0:0:1::1', 'the longest run is compressed (§4.2.3)'],
    [v6(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1), '2001:db8::1:0:0:1', 'the first of two equal runs (§4.2.3)'],
    [v6(0xfe80, 0, 0, 0, 0xabcd, 0xef, 0x12, 0x3400), 'fe80::abcd:ef:12:3400', 'lower case, no leading zeros (§4.1, §4.3)'],
    [v6(1, 0, 0, 0, 0, 0, 0, 0), '1::'],
  ];
  for (const [bytes, text, why] of cases) {
    const got = formatAddress(bytes);
    t.equal(got, text, why ?? text);
    t.equal(isIP(got), 6, `${got} is a valid IPv6 address`);
  }
});

t.test('anything else is empty', async (t) => {
  t.equal(formatAddress(new Uint8Array(0)), '');
  t.equal(formatAddress(new Uint8Array(5)), '');
});

t.test('clientAddress: IPv4 text comes from a bounded cache and matches formatAddress', async (t) => {
  // Only getRemoteAddress is read; the integration tests cover it on real uWS responses.
  const res = (bytes: Uint8Array) => ({ getRemoteAddress: () => bytes.slice().buffer }) as unknown as HttpResponse;
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const v4 = Uint8Array.of(10, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
    const text = clientAddress(res(v4));
    if (text !== formatAddress(v4)) t.fail(`${formatAddress(v4)} came out as ${text}`);
    // Twice: the second answer comes from the cache.
    if (clientAddress(res(v4)) !== text) t.fail(`${text} changed on the second call`);
    seen.add(text);
  }
  t.equal(seen.size, 5000, 'every address keeps its own text past the cache bound');
  t.equal(clientAddress(res(v6(0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201))), '192.0.2.1', 'mapped IPv4 shares the IPv4 text');
  t.equal(clientAddress(res(v6(0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201))), '192.0.2.1', 'and again, from the cache');
  t.equal(clientAddress(res(v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))), '2001:db8::1', 'IPv6 is formatted as before');
});
