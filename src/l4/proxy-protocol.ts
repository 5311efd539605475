// The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2): encoding the header Sluice
// sends ahead of a backend connection so the backend sees the real client, and an incremental,
// bounded, strict decoder for the header a front load balancer sends ahead of an accepted one.
//
// v1 is one text line, at most 107 bytes with its CRLF:
//   "PROXY TCP4 <src> <dst> <sport> <dport>\r\n", "PROXY TCP6 ...", or "PROXY UNKNOWN[ ...]\r\n".
// v2 is binary: a 12-byte signature, ver/cmd (0x20 LOCAL, 0x21 PROXY), family/protocol
// (0x11 TCP4, 0x12 UDP4, 0x21 TCP6, 0x22 UDP6, 0x31/0x32 UNIX, 0x00 UNSPEC), a 16-bit length, then
// the addresses (12, 36 or 216 bytes) and optional TLVs, which the decoder hands back unparsed.
//
// The decoder only says whether the stream starts with a header; whether a stream without one is an
// error is the listener's decision (a listener that does not accept PROXY never runs the decoder:
// there the same bytes are data).

import net from 'node:net';
import { localAddress, peerAddress, type TcpHandle } from '../net/uv.js';
import { formatIPv6 } from '../model/address-text.js';

export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** proxy-protocol.txt §2.1: the longest v1 line, CRLF included. */
export const V1_MAX = 107;
/**
 * Default bound on a v2 header (16 fixed bytes + addresses + TLVs). The format allows 64 KiB; real
 * senders (HAProxy, AWS NLB, GCP) send a few hundred bytes at most, so 4 KiB keeps a hostile peer
 * from parking memory on a connection that has not even been routed.
 */
export const DEFAULT_MAX_V2 = 4096;

/** `family` values; `unknown` is v1 UNKNOWN / v2 UNSPEC (and LOCAL): no addresses. */
export type ProxyFamily = 'tcp4' | 'tcp6' | 'udp4' | 'udp6' | 'unix-stream' | 'unix-dgram' | 'unknown';

export interface ProxyAddresses {
  family: ProxyFamily;
  sourceAddress: string;
  sourcePort: number;
  destinationAddress: string;
  destinationPort: number;
}

export interface ProxyHeader extends ProxyAddresses {
  version: 1 | 2;
  /** v2 LOCAL (a health check from the front balancer itself): use the connection's own addresses. */
  local: boolean;
  /** v2 TLV bytes after the addresses, unparsed (empty for v1). */
  tlvs: Buffer;
  /** Length of the header on the wire. */
  length: number;
}

// Encoding.

/**
 * The v1 line for a TCP connection. IPv4-mapped IPv6 pairs (a dual-stack listener's view of IPv4
 * clients) are sent as TCP4; a pair that mixes families is sent as TCP6 with the IPv4 side mapped.
 * `null` or family `unknown` gives "PROXY UNKNOWN\r\n".
 */
export function encodeV1(a: ProxyAddresses | null): Buffer {
  if (a === null || a.family === 'unknown') return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  if (a.family !== 'tcp4' && a.family !== 'tcp6') throw new TypeError(`PROXY v1 cannot carry ${a.family}`);
  const p = normalisePair(a.sourceAddress, a.destinationAddress);
  checkPort(a.sourcePort);
  checkPort(a.destinationPort);
  const src = p.v4 ? p.src : formatIPv6(parseIPv6(p.src));
  const dst = p.v4 ? p.dst : formatIPv6(parseIPv6(p.dst));
  return Buffer.from(`PROXY ${p.v4 ? 'TCP4' : 'TCP6'} ${src} ${dst} ${a.sourcePort} ${a.destinationPort}\r\n`, 'latin1');
}

/**
 * A v2 header: PROXY with the addresses, or LOCAL when `a` is null. Family `unknown` gives PROXY
 * with UNSPEC and no addresses. `tlvs` (already encoded) are appended as given.
 */
export function encodeV2(a: ProxyAddresses | null, tlvs: Uint8Array = new Uint8Array(0)): Buffer {
  let famProto = 0x00;
  let addr: Buffer = Buffer.alloc(0);
  if (a !== null && a.family !== 'unknown') {
    if (a.family === 'unix-stream' || a.family === 'unix-dgram') {
      famProto = a.family === 'unix-stream' ? 0x31 : 0x32;
      addr = Buffer.alloc(216);
      writeUnixPath(addr, 0, a.sourceAddress);
      writeUnixPath(addr, 108, a.destinationAddress);
    } else {
      checkPort(a.sourcePort);
      checkPort(a.destinationPort);
      const dgram = a.family === 'udp4' || a.family === 'udp6';
      const p = normalisePair(a.sourceAddress, a.destinationAddress);
      if (p.v4) {
        famProto = dgram ? 0x12 : 0x11;
        addr = Buffer.alloc(12);
        addr.set(parseIPv4(p.src)!, 0);
        addr.set(parseIPv4(p.dst)!, 4);
        addr.writeUInt16BE(a.sourcePort, 8);
        addr.writeUInt16BE(a.destinationPort, 10);
      } else {
        famProto = dgram ? 0x22 : 0x21;
        addr = Buffer.alloc(36);
        addr.set(parseIPv6(p.src), 0);
        addr.set(parseIPv6(p.dst), 16);
        addr.writeUInt16BE(a.sourcePort, 32);
        addr.writeUInt16BE(a.destinationPort, 34);
      }
    }
  }
  const length = addr.length + tlvs.length;
  if (length > 0xffff) throw new RangeError('PROXY v2 header over 64 KiB');
  const head = Buffer.alloc(16);
  V2_SIGNATURE.copy(head, 0);
  head[12] = a === null ? 0x20 : 0x21;
  head[13] = famProto;
  head.writeUInt16BE(length, 14);
  return Buffer.concat([head, addr, tlvs]);
}

/** The addresses of an accepted connection, as a PROXY header describes them (null: it has none now). */
export function handleAddresses(h: TcpHandle): ProxyAddresses | null {
  const peer = peerAddress(h);
  const local = localAddress(h);
  if (peer === null || local === null) return null;
  const src = peer.address!;
  const dst = local.address!;
  return { family: net.isIPv4(src) && net.isIPv4(dst) ? 'tcp4' : 'tcp6', sourceAddress: src, sourcePort: peer.port!, destinationAddress: dst, destinationPort: local.port! };
}

// Decoding.

export const PROXY_MORE = 0;
export const PROXY_DONE = 1;
/** The stream does not start with a PROXY header (the bytes so far rule out both versions). */
export const PROXY_ABSENT = 2;
/** It starts like one but is not a valid header: see `error`. */
export const PROXY_INVALID = 3;
export type ProxyStatus = typeof PROXY_MORE | typeof PROXY_DONE | typeof PROXY_ABSENT | typeof PROXY_INVALID;

export class ProxyHeaderDecoder {
  /** Set once push() returned PROXY_DONE. */
  header: ProxyHeader | null = null;
  /** Bytes of the last pushed chunk after the header (a view, not a copy) once DONE. */
  rest: Buffer = Buffer.alloc(0);
  error = '';
  readonly #maxV2: number;
  #buf: Buffer;
  #have = 0;
  #status: ProxyStatus = PROXY_MORE;

  constructor(maxV2 = DEFAULT_MAX_V2) {
    this.#maxV2 = Math.max(16 + 216, maxV2);
    this.#buf = Buffer.alloc(16); // grows to the header's stated size, at most #maxV2
  }

  get status(): ProxyStatus {
    return this.#status;
  }

  /** Everything pushed so far that was not handed back in `rest` (for ABSENT: the stream's start). */
  buffered(): Buffer {
    return this.#buf.subarray(0, this.#have);
  }

  push(chunk: Buffer): ProxyStatus {
    if (this.#status !== PROXY_MORE) return this.#status;
    let i = 0;
    while (i < chunk.length) {
      const need = this.#need();
      if (need < 0) return this.#status;
      // Never grow past the bound: an oversized v2 length is rejected once its 16 bytes are in.
      this.#grow(Math.min(need, this.#maxV2));
      // v1 is read up to its LF; v2 up to its stated length: never past the header.
      const take = Math.min(need - this.#have, this.#buf.length - this.#have, chunk.length - i);
      chunk.copy(this.#buf, this.#have, i, i + take);
      this.#have += take;
      i += take;
      const s = this.#check();
      if (s === PROXY_DONE) {
        this.rest = chunk.subarray(i);
        return s;
      }
      if (s !== PROXY_MORE) {
        // Keep the unread remainder with the start so the caller can replay the stream.
        if (i < chunk.length) {
          this.#grow(this.#have + chunk.length - i);
          chunk.copy(this.#buf, this.#have, i);
          this.#have += chunk.length - i;
        }
        return s;
      }
    }
    return PROXY_MORE;
  }

  /** How many bytes the header needs in total as far as known now (-1 once decided). */
  #need(): number {
    const b = this.#buf;
    if (this.#have === 0) return 1;
    if (b[0] === 0x50) {
      // v1: one byte at a time past the prefix so we stop exactly at the LF.
      return this.#have < V1_PREFIX.length ? V1_PREFIX.length : this.#have + 1;
    }
    if (this.#have < 16) return 16;
    return 16 + b.readUInt16BE(14);
  }

  #grow(size: number): void {
    if (size <= this.#buf.length) return;
    const next = Buffer.alloc(Math.max(size, Math.min(this.#buf.length * 2, 1 << 16)));
    this.#buf.copy(next, 0, 0, this.#have);
    this.#buf = next;
  }

  #check(): ProxyStatus {
    const b = this.#buf;
    const n = this.#have;
    if (b[0] === 0x50) {
      const prefix = Math.min(n, V1_PREFIX.length);
      if (b.compare(V1_PREFIX, 0, prefix, 0, prefix) !== 0) return (this.#status = PROXY_ABSENT);
      if (b[n - 1] === 0x0a) return this.#v1();
      if (n >= V1_MAX) return this.#invalid('PROXY v1 line longer than 107 bytes');
      return PROXY_MORE;
    }
    const sig = Math.min(n, 12);
    if (b.compare(V2_SIGNATURE, 0, sig, 0, sig) !== 0) return (this.#status = PROXY_ABSENT);
    if (n < 16) return PROXY_MORE;
    const stated = 16 + b.readUInt16BE(14);
    if (stated > this.#maxV2) return this.#invalid(`PROXY v2 header of ${stated} bytes is over the ${this.#maxV2}-byte bound`);
    if (n < stated) return PROXY_MORE;
    return this.#v2(stated);
  }

  #v1(): ProxyStatus {
    const n = this.#have;
    if (n < 2 || this.#buf[n - 2] !== 0x0d) return this.#invalid('PROXY v1 line does not end in CRLF');
    const line = this.#buf.toString('latin1', 0, n - 2);
    const parts = line.split(' ');
    const done = (h: Omit<ProxyHeader, 'version' | 'local' | 'tlvs' | 'length'>): ProxyStatus => {
      this.header = { version: 1, local: false, tlvs: Buffer.alloc(0), length: n, ...h };
      return (this.#status = PROXY_DONE);
    };
    if (parts[1] === 'UNKNOWN') {
      // §2.1: after UNKNOWN the receiver must ignore everything up to the CRLF.
      return done({ family: 'unknown', sourceAddress: '', sourcePort: 0, destinationAddress: '', destinationPort: 0 });
    }
    if (parts.length !== 6) return this.#invalid('PROXY v1 line does not have six fields');
    const [, proto, src, dst, sport, dport] = parts as [string, string, string, string, string, string];
    const v4 = proto === 'TCP4';
    if (!v4 && proto !== 'TCP6') return this.#invalid(`PROXY v1 protocol "${proto}" is not TCP4, TCP6 or UNKNOWN`);
    const ok = v4 ? net.isIPv4(src) && net.isIPv4(dst) : net.isIPv6(src) && net.isIPv6(dst);
    if (!ok) return this.#invalid(`PROXY v1 addresses are not ${v4 ? 'IPv4' : 'IPv6'}`);
    const sp = parsePort(sport);
    const dp = parsePort(dport);
    if (sp < 0 || dp < 0) return this.#invalid('PROXY v1 port is not a number in 0..65535');
    return done({
      family: v4 ? 'tcp4' : 'tcp6',
      sourceAddress: v4 ? src : formatIPv6(parseIPv6(src)),
      sourcePort: sp,
      destinationAddress: v4 ? dst : formatIPv6(parseIPv6(dst)),
      destinationPort: dp,
    });
  }

  #v2(length: number): ProxyStatus {
    const b = this.#buf;
    const verCmd = b[12]!;
    if (verCmd >> 4 !== 2) return this.#invalid(`PROXY v2 version ${verCmd >> 4}`);
    const cmd = verCmd & 0x0f;
    if (cmd > 1) return this.#invalid(`PROXY v2 command ${cmd}`);
    const famProto = b[13]!;
    const fam = famProto >> 4;
    const proto = famProto & 0x0f;
    if (fam > 3 || proto > 2) return this.#invalid(`PROXY v2 family/protocol 0x${famProto.toString(16)}`);
    const body = length - 16;
    const need = fam === 1 ? 12 : fam === 2 ? 36 : fam === 3 ? 216 : 0;
    if (body < need) return this.#invalid(`PROXY v2 length ${body} is short for its family`);
    const h: ProxyHeader = {
      version: 2,
      local: cmd === 0,
      family: 'unknown',
      sourceAddress: '',
      sourcePort: 0,
      destinationAddress: '',
      destinationPort: 0,
      tlvs: Buffer.from(b.subarray(16 + need, length)),
      length,
    };
    // LOCAL: the addresses (if any) are ignored, per §2.2. UNSPEC proto: same.
    if (cmd === 1 && proto !== 0 && fam !== 0) {
      if (fam === 1) {
        h.family = proto === 1 ? 'tcp4' : 'udp4';
        h.sourceAddress = formatIPv4(b, 16);
        h.destinationAddress = formatIPv4(b, 20);
        h.sourcePort = b.readUInt16BE(24);
        h.destinationPort = b.readUInt16BE(26);
      } else if (fam === 2) {
        h.family = proto === 1 ? 'tcp6' : 'udp6';
        h.sourceAddress = formatIPv6(b.subarray(16, 32));
        h.destinationAddress = formatIPv6(b.subarray(32, 48));
        h.sourcePort = b.readUInt16BE(48);
        h.destinationPort = b.readUInt16BE(50);
      } else {
        h.family = proto === 1 ? 'unix-stream' : 'unix-dgram';
        h.sourceAddress = readUnixPath(b, 16);
        h.destinationAddress = readUnixPath(b, 124);
      }
    }
    this.header = h;
    return (this.#status = PROXY_DONE);
  }

  #invalid(reason: string): ProxyStatus {
    this.error = reason;
    return (this.#status = PROXY_INVALID);
  }
}

// Addresses.

function checkPort(p: number): void {
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new RangeError(`port ${p} out of range`);
}

/** A decimal port 0..65535 without sign or leading zeros; -1 when it is not one. */
function parsePort(s: string): number {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(s)) return -1;
  const n = Number(s);
  return n <= 65535 ? n : -1;
}

/** Both as IPv4 when both are IPv4 (or IPv4-mapped), else both as IPv6 text. */
function normalisePair(src: string, dst: string): { v4: boolean; src: string; dst: string } {
  const s4 = asIPv4(src);
  const d4 = asIPv4(dst);
  if (s4 !== null && d4 !== null) return { v4: true, src: s4, dst: d4 };
  const s6 = s4 !== null ? `::ffff:${s4}` : src;
  const d6 = d4 !== null ? `::ffff:${d4}` : dst;
  if (!net.isIPv6(s6) || !net.isIPv6(d6)) throw new TypeError(`not an IP address pair: ${src} ${dst}`);
  return { v4: false, src: s6, dst: d6 };
}

function asIPv4(a: string): string | null {
  if (net.isIPv4(a)) return a;
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  return m !== null && net.isIPv4(m[1]!) ? m[1]! : null;
}

function parseIPv4(a: string): Uint8Array | null {
  if (!net.isIPv4(a)) return null;
  return Uint8Array.from(a.split('.').map(Number));
}

function formatIPv4(b: Uint8Array, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/** 16 bytes of a valid IPv6 text address (with "::" and a trailing dotted quad allowed). */
export function parseIPv6(a: string): Uint8Array {
  if (!net.isIPv6(a)) throw new TypeError(`not an IPv6 address: ${a}`);
  const text = a.replace(/%.*$/, ''); // zone ids do not travel
  const out = new Uint8Array(16);
  const words: number[] = [];
  const toWords = (part: string): number[] => {
    if (part === '') return [];
    const groups = part.split(':');
    const w: number[] = [];
    for (const g of groups) {
      if (g.includes('.')) {
        const q = parseIPv4(g)!;
        w.push((q[0]! << 8) | q[1]!, (q[2]! << 8) | q[3]!);
      } else w.push(parseInt(g, 16));
    }
    return w;
  };
  const gap = text.indexOf('::');
  if (gap < 0) words.push(...toWords(text));
  else {
    const head = toWords(text.slice(0, gap));
    const tail = toWords(text.slice(gap + 2));
    words.push(...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail);
  }
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i]! >> 8;
    out[2 * i + 1] = words[i]! & 0xff;
  }
  return out;
}

function writeUnixPath(b: Buffer, at: number, path: string): void {
  const bytes = Buffer.from(path, 'utf8');
  if (bytes.length > 108) throw new RangeError('unix socket path over 108 bytes');
  bytes.copy(b, at);
}

function readUnixPath(b: Buffer, at: number): string {
  let end = at;
  while (end < at + 108 && b[end] !== 0) end++;
  return b.toString('utf8', at, end);
}
