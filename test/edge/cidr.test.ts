// CIDR sets: the edges (/0, /32, /128), IPv4-mapped IPv6 both in the list and from the client,
// IPv6 compression forms, and parse errors with their messages.

import t from 'tap';
import { CidrSet, parseCidr, parseIp, type Cidr } from '../../src/edge/cidr.js';

const set = (...blocks: string[]) => new CidrSet(blocks.map((b) => parseCidr(b) as Cidr));

t.test('IPv4 edges', async (t) => {
  const all = set('0.0.0.0/0');
  for (const ip of ['0.0.0.0', '1.2.3.4', '255.255.255.255', '::ffff:9.9.9.9']) t.ok(all.has(ip), `/0 holds ${ip}`);
  t.notOk(all.has('::1'), 'an IPv4 /0 holds no IPv6 address');
  const one = set('10.1.2.3/32');
  t.ok(one.has('10.1.2.3'));
  t.notOk(one.has('10.1.2.4'));
  t.ok(set('10.1.2.3').has('10.1.2.3'), 'no prefix length = /32');
  const eight = set('10.0.0.0/8');
  t.ok(eight.has('10.255.255.255'));
  t.notOk(eight.has('11.0.0.0'));
  t.ok(set('10.9.9.9/8').has('10.0.0.1'), 'host bits in the block are masked');
  t.ok(set('192.168.1.128/25').has('192.168.1.200'));
  t.notOk(set('192.168.1.128/25').has('192.168.1.127'));
});

t.test('IPv4-mapped IPv6 is IPv4', async (t) => {
  t.ok(set('1.2.3.4/32').has('::ffff:1.2.3.4'), 'a mapped client against an IPv4 block');
  t.ok(set('::ffff:1.2.3.4/128').has('1.2.3.4'), 'a mapped block against an IPv4 client');
  t.ok(set('::ffff:10.0.0.0/104').has('10.200.0.1'), '/104 mapped = /8');
  t.same(parseIp('::ffff:1.2.3.4'), new Uint8Array([1, 2, 3, 4]));
  t.same(parseIp('::FFFF:0102:0304'), new Uint8Array([1, 2, 3, 4]), 'hex form too');
});

t.test('IPv6', async (t) => {
  const loop = set('::1/128');
  t.ok(loop.has('::1'));
  t.ok(loop.has('0:0:0:0:0:0:0:1'));
  t.notOk(loop.has('::2'));
  const all = set('::/0');
  t.ok(all.has('2001:db8::1'));
  t.notOk(all.has('1.2.3.4'), 'an IPv6 /0 holds no IPv4 address');
  const doc = set('2001:db8::/32');
  t.ok(doc.has('2001:db8:ffff::1'));
  t.notOk(doc.has('2001:db9::1'));
  t.ok(set('2001:db8::/33').has('2001:db8:7fff::'));
  t.notOk(set('2001:db8::/33').has('2001:db8:8000::'));
  t.ok(set('fe80::/10').has('febf::1'));
});

t.test('a thousand blocks, one lookup per prefix length', async (t) => {
  const blocks: string[] = [];
  for (let i = 0; i < 1000; i++) blocks.push(`10.${i >> 8}.${i & 255}.0/24`);
  const s = set(...blocks);
  t.equal(s.size, 1000);
  t.ok(s.has('10.3.231.77'));
  t.notOk(s.has('10.4.0.1'));
});

t.test('errors name the problem', async (t) => {
  t.match(parseCidr('10.0.0.0/33'), /prefix length must be 0-32/);
  t.match(parseCidr('::/129'), /prefix length must be 0-128/);
  t.match(parseCidr('10.0.0.256'), /not an IPv4 or IPv6 address/);
  t.match(parseCidr('1:2:3:4:5:6:7:8:9'), /not an IPv4 or IPv6/);
  t.match(parseCidr('::ffff:1.2.3.4/64'), /at least 96/);
  t.match(parseCidr('10.0.0.0/x'), /prefix length/);
  t.equal(parseIp('01.2.3.4'), null, 'leading zeros are refused (octal ambiguity)');
});
