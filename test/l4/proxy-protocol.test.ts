import t from 'tap';
import {
  PROXY_ABSENT,
  PROXY_DONE,
  PROXY_INVALID,
  PROXY_MORE,
  ProxyHeaderDecoder,
  V2_SIGNATURE,
  encodeV1,
  encodeV2,
  parseIPv6,
} from '../../src/l4/proxy-protocol.js';
import { formatIPv6 } from '../../src/model/address-text.js';

const FFFF6 = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function decode(bytes: Buffer, step = bytes.length): ProxyHeaderDecoder {
  const d = new ProxyHeaderDecoder();
  for (let i = 0; i < bytes.length && d.status === PROXY_MORE; i += step) d.push(bytes.subarray(i, i + step));
  return d;
}

t.test('v1 encoding: the spec examples, byte for byte', async (t) => {
  t.equal(
    encodeV1({ family: 'tcp4', sourceAddress: '192.168.0.1', sourcePort: 56324, destinationAddress: '192.168.0.11', destinationPort: 443 }).toString('latin1'),
    'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n',
  );
  const worst4 = encodeV1({ family: 'tcp4', sourceAddress: '255.255.255.255', sourcePort: 65535, destinationAddress: '255.255.255.255', destinationPort: 65535 });
  t.equal(worst4.toString('latin1'), 'PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n');
  t.equal(worst4.length, 56, 'worst case TCP4 is 56 bytes');
  const worst6 = encodeV1({ family: 'tcp6', sourceAddress: FFFF6, sourcePort: 65535, destinationAddress: FFFF6, destinationPort: 65535 });
  t.equal(worst6.toString('latin1'), `PROXY TCP6 ${FFFF6} ${FFFF6} 65535 65535\r\n`);
  t.equal(worst6.length, 104, 'worst case TCP6 is 104 bytes');
  t.equal(encodeV1(null).toString('latin1'), 'PROXY UNKNOWN\r\n');
  t.equal(encodeV1(null).length, 15);
  t.equal(
    encodeV1({ family: 'tcp6', sourceAddress: '::ffff:10.1.2.3', sourcePort: 1, destinationAddress: '::ffff:10.0.0.1', destinationPort: 2 }).toString(),
    'PROXY TCP4 10.1.2.3 10.0.0.1 1 2\r\n',
    'a dual-stack view of an IPv4 pair goes as TCP4',
  );
  t.equal(
    encodeV1({ family: 'tcp6', sourceAddress: '2001:DB8:0:0:0:0:0:1', sourcePort: 1, destinationAddress: '10.0.0.1', destinationPort: 2 }).toString(),
    'PROXY TCP6 2001:db8::1 ::ffff:a00:1 1 2\r\n',
    'mixed families go as TCP6, canonical text',
  );
  t.throws(() => encodeV1({ family: 'udp4', sourceAddress: '1.1.1.1', sourcePort: 1, destinationAddress: '1.1.1.1', destinationPort: 1 }));
  t.throws(() => encodeV1({ family: 'tcp4', sourceAddress: '1.1.1.1', sourcePort: 70000, destinationAddress: '1.1.1.1', destinationPort: 1 }));
});

t.test('v1 decoding: the spec examples, at every split', async (t) => {
  const line = 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n';
  const stream = Buffer.from(`${line}GET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n`);
  for (const step of [1, 2, 7, stream.length]) {
    const d = decode(stream, step);
    t.equal(d.status, PROXY_DONE, `step ${step}`);
    t.match(d.header, { version: 1, family: 'tcp4', sourceAddress: '192.168.0.1', sourcePort: 56324, destinationAddress: '192.168.0.11', destinationPort: 443, length: line.length });
    if (step === stream.length) t.equal(d.rest.toString(), 'GET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n', 'the rest of the chunk is data');
  }
  const d6 = decode(Buffer.from(`PROXY TCP6 ${FFFF6} 2001:db8::1 65535 0\r\n`));
  t.match(d6.header, { family: 'tcp6', sourceAddress: FFFF6, destinationAddress: '2001:db8::1', sourcePort: 65535, destinationPort: 0 });
  const unknown = decode(Buffer.from(`PROXY UNKNOWN ${FFFF6} ${FFFF6} 65535 65535\r\n`));
  t.equal(unknown.status, PROXY_DONE, 'the 107-byte worst case');
  t.equal(unknown.header!.length, 107);
  t.equal(unknown.header!.family, 'unknown');
  t.equal(decode(Buffer.from('PROXY UNKNOWN\r\n')).header!.family, 'unknown');
});

t.test('v1 decoding is strict', async (t) => {
  const bad = [
    'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n',
    'PROXY TCP4 192.168.0.1  192.168.0.11 56324 443\r\n',
    'PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n',
    'PROXY TCP4 ::1 ::1 1 2\r\n',
    'PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n',
    'PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n',
    'PROXY TCP4 192.168.0.1 192.168.0.11 080 443\r\n',
    'PROXY TCP4 192.168.0.1 192.168.0.11 -1 443\r\n',
    'PROXY UDP4 192.168.0.1 192.168.0.11 1 2\r\n',
    `PROXY UNKNOWN ${'x'.repeat(100)}\r\n`,
  ];
  for (const b of bad) {
    const d = decode(Buffer.from(b), 3);
    t.equal(d.status, PROXY_INVALID, JSON.stringify(b));
  }
  const long = decode(Buffer.from(`PROXY ${'A'.repeat(200)}`));
  t.equal(long.status, PROXY_INVALID, 'no LF within 107 bytes');
  t.ok(long.buffered().length <= 200 + 6, 'bounded');
});

t.test('not a PROXY header: ABSENT, with the bytes kept for replay', async (t) => {
  for (const s of ['GET / HTTP/1.1\r\n', 'PROX', 'PUT /x', '\r\n\r\nhello']) {
    const d = decode(Buffer.from(s + 'more'), 1);
    t.equal(d.status, PROXY_ABSENT, JSON.stringify(s));
    t.same(d.buffered().toString(), (s + 'more').slice(0, d.buffered().length), 'the buffered bytes are the stream start');
  }
  const d = new ProxyHeaderDecoder();
  t.equal(d.push(Buffer.from('PRO')), PROXY_MORE, 'a prefix of the signature waits');
  t.equal(d.push(Buffer.from('BE and more')), PROXY_ABSENT);
  t.equal(d.buffered().toString(), 'PROBE and more', 'the whole chunk is kept');
  const tls = new ProxyHeaderDecoder();
  t.equal(tls.push(Buffer.from([22, 3, 1, 0, 5])), PROXY_ABSENT, 'a TLS record is not a header');
});

const v2 = (verCmd: number, fam: number, body: Buffer) => Buffer.concat([V2_SIGNATURE, Buffer.from([verCmd, fam, body.length >> 8, body.length & 255]), body]);

t.test('v2 encoding, byte for byte', async (t) => {
  t.same(V2_SIGNATURE, hex('0D0A0D0A000D0A515549540A'), 'the 12-byte signature');
  const tcp4 = encodeV2({ family: 'tcp4', sourceAddress: '192.168.0.1', sourcePort: 56324, destinationAddress: '192.168.0.11', destinationPort: 443 });
  t.same(tcp4, hex('0D0A0D0A000D0A515549540A 21 11 000C C0A80001 C0A8000B DC04 01BB'));
  t.equal(tcp4.length, 28);
  const tcp6 = encodeV2({ family: 'tcp6', sourceAddress: '2001:db8::1', sourcePort: 1, destinationAddress: '::1', destinationPort: 65535 });
  t.same(tcp6, hex('0D0A0D0A000D0A515549540A 21 21 0024 20010DB8000000000000000000000001 00000000000000000000000000000001 0001 FFFF'));
  t.equal(tcp6.length, 52);
  const udp4 = encodeV2({ family: 'udp4', sourceAddress: '10.0.0.1', sourcePort: 53, destinationAddress: '10.0.0.2', destinationPort: 5353 });
  t.same(udp4.subarray(12, 16), hex('21 12 000C'));
  const udp6 = encodeV2({ family: 'udp6', sourceAddress: '::2', sourcePort: 53, destinationAddress: '::3', destinationPort: 53 });
  t.same(udp6.subarray(12, 16), hex('21 22 0024'));
  t.same(encodeV2(null), hex('0D0A0D0A000D0A515549540A 20 00 0000'), 'LOCAL');
  t.same(encodeV2({ family: 'unknown', sourceAddress: '', sourcePort: 0, destinationAddress: '', destinationPort: 0 }), hex('0D0A0D0A000D0A515549540A 21 00 0000'), 'PROXY UNSPEC');
  const unix = encodeV2({ family: 'unix-stream', sourceAddress: '/tmp/a', sourcePort: 0, destinationAddress: '/tmp/b', destinationPort: 0 });
  t.equal(unix.length, 232, 'UNIX: 16 + 216');
  t.same(unix.subarray(12, 16), hex('21 31 00D8'));
  const withTlv = encodeV2({ family: 'tcp4', sourceAddress: '1.2.3.4', sourcePort: 1, destinationAddress: '5.6.7.8', destinationPort: 2 }, hex('04 0003 616263'));
  t.same(withTlv.subarray(14, 16), hex('0012'), 'length counts the TLVs');
  t.same(withTlv.subarray(28), hex('04 0003 616263'));
});

t.test('v2 decoding: every family, every split', async (t) => {
  const tcp4 = encodeV2({ family: 'tcp4', sourceAddress: '192.168.0.1', sourcePort: 56324, destinationAddress: '192.168.0.11', destinationPort: 443 }, hex('04 0001 7A'));
  const stream = Buffer.concat([tcp4, Buffer.from('payload')]);
  for (let step = 1; step <= stream.length; step++) {
    const d = decode(stream, step);
    if (d.status !== PROXY_DONE || d.header!.sourcePort !== 56324) {
      t.fail(`step ${step}: ${d.status} ${d.error}`);
      return;
    }
  }
  const d = decode(stream);
  t.match(d.header, { version: 2, local: false, family: 'tcp4', sourceAddress: '192.168.0.1', sourcePort: 56324, destinationAddress: '192.168.0.11', destinationPort: 443, length: 32 });
  t.same(d.header!.tlvs, hex('04 0001 7A'));
  t.equal(d.rest.toString(), 'payload');
  const d6 = decode(encodeV2({ family: 'udp6', sourceAddress: '2001:db8::1', sourcePort: 1, destinationAddress: 'fe80::1:0:0:2', destinationPort: 2 }));
  t.match(d6.header, { family: 'udp6', sourceAddress: '2001:db8::1', destinationAddress: 'fe80::1:0:0:2' });
  const du = decode(encodeV2({ family: 'unix-dgram', sourceAddress: '/run/a.sock', sourcePort: 0, destinationAddress: '/run/b.sock', destinationPort: 0 }));
  t.match(du.header, { family: 'unix-dgram', sourceAddress: '/run/a.sock', destinationAddress: '/run/b.sock' });
  const local = decode(v2(0x20, 0x11, Buffer.alloc(12, 1)));
  t.match(local.header, { local: true, family: 'unknown', sourceAddress: '' }, 'LOCAL ignores the addresses it carries');
});

t.test('v2 decoding is strict and bounded', async (t) => {
  t.equal(decode(v2(0x11, 0x11, Buffer.alloc(12))).status, PROXY_INVALID, 'version 1 in the binary form');
  t.equal(decode(v2(0x22, 0x11, Buffer.alloc(12))).status, PROXY_INVALID, 'command 2');
  t.equal(decode(v2(0x21, 0x41, Buffer.alloc(12))).status, PROXY_INVALID, 'family 4');
  t.equal(decode(v2(0x21, 0x13, Buffer.alloc(12))).status, PROXY_INVALID, 'protocol 3');
  t.equal(decode(v2(0x21, 0x11, Buffer.alloc(11))).status, PROXY_INVALID, 'TCP4 shorter than 12 bytes');
  t.equal(decode(v2(0x21, 0x21, Buffer.alloc(12))).status, PROXY_INVALID, 'TCP6 shorter than 36 bytes');
  const huge = Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])]);
  const d = decode(huge);
  t.equal(d.status, PROXY_INVALID, 'a 64 KiB header is over the default bound');
  t.match(d.error, /bound/);
  t.ok(d.buffered().length <= 4096);
  t.equal(new ProxyHeaderDecoder(70_000).push(huge), PROXY_MORE, 'a larger bound waits for it');
});

t.test('IPv6 text round trips (RFC 5952)', async (t) => {
  const cases: [string, string][] = [
    ['::', '::'],
    ['::1', '::1'],
    ['2001:0DB8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['fe80::1%eth0', 'fe80::1'],
  ];
  for (const [input, want] of cases) t.equal(formatIPv6(parseIPv6(input)), want, input);
});
