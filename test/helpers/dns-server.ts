// A small authoritative DNS responder on loopback UDP, for the discovery tests only: answers A,
// AAAA and SRV questions from a zone the test edits while it runs, with the TTLs the test sets,
// NXDOMAIN for names it does not have and an empty answer (NODATA) for a type a name lacks. It
// records every question, so tests can see re-resolution happen. RFC 1035 wire format, no
// compression in what it writes except the pointer to the question's name.

import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import type { Teardown } from './sluice.js';

export interface SrvRecord {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

export interface Zone {
  A?: Record<string, { addresses: string[]; ttl: number }>;
  AAAA?: Record<string, { addresses: string[]; ttl: number }>;
  SRV?: Record<string, { records: SrvRecord[]; ttl: number }>;
}

export interface Question {
  name: string;
  type: 'A' | 'AAAA' | 'SRV' | string;
  /** Date.now() when it arrived. */
  at: number;
}

export interface DnsServer {
  /** "127.0.0.1:<port>", for SLUICE_DNS_SERVERS. */
  readonly address: string;
  zone: Zone;
  readonly questions: Question[];
  /** When true, questions go unanswered (a resolver that is down). */
  silent: boolean;
  close(): Promise<void>;
}

const TYPES: Record<number, string> = { 1: 'A', 28: 'AAAA', 33: 'SRV' };

export async function startDnsServer(t: Teardown, zone: Zone): Promise<DnsServer> {
  const socket = dgram.createSocket('udp4');
  const server: DnsServer = {
    address: '',
    zone,
    questions: [],
    silent: false,
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
  socket.on('message', (msg, peer) => {
    const q = readQuestion(msg);
    if (q === null) return;
    server.questions.push({ name: q.name, type: TYPES[q.type] ?? String(q.type), at: Date.now() });
    if (server.silent) return;
    socket.send(answer(msg, q, server.zone), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  (server as { address: string }).address = `127.0.0.1:${(socket.address() as AddressInfo).port}`;
  t.teardown(() => server.close().catch(() => undefined));
  return server;
}

interface ParsedQuestion {
  name: string;
  type: number;
  /** Offset just past the question (qtype, qclass included). */
  end: number;
}

function readQuestion(msg: Buffer): ParsedQuestion | null {
  if (msg.length < 12 || msg.readUInt16BE(4) < 1) return null;
  const labels: string[] = [];
  let i = 12;
  while (i < msg.length && msg[i] !== 0) {
    const len = msg[i]!;
    labels.push(msg.subarray(i + 1, i + 1 + len).toString('ascii'));
    i += 1 + len;
  }
  if (i + 5 > msg.length) return null;
  return { name: labels.join('.').toLowerCase(), type: msg.readUInt16BE(i + 1), end: i + 5 };
}

function answer(query: Buffer, q: ParsedQuestion, zone: Zone): Buffer {
  const records: Buffer[] = [];
  let known = false;
  const type = TYPES[q.type];
  for (const kind of ['A', 'AAAA', 'SRV'] as const) if (zone[kind]?.[q.name] !== undefined) known = true;
  if (type === 'A' || type === 'AAAA') {
    const entry = zone[type]?.[q.name];
    for (const address of entry?.addresses ?? []) records.push(rr(q.type, entry!.ttl, type === 'A' ? ipv4(address) : ipv6(address)));
  } else if (type === 'SRV') {
    const entry = zone.SRV?.[q.name];
    for (const r of entry?.records ?? []) {
      const head = Buffer.alloc(6);
      head.writeUInt16BE(r.priority, 0);
      head.writeUInt16BE(r.weight, 2);
      head.writeUInt16BE(r.port, 4);
      records.push(rr(q.type, entry!.ttl, Buffer.concat([head, name(r.target)])));
    }
  }
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0);
  // QR, AA, RD copied, RA; RCODE 3 (NXDOMAIN) for a name the zone does not have.
  const rd = query.readUInt16BE(2) & 0x0100;
  header.writeUInt16BE(0x8000 | 0x0400 | rd | 0x0080 | (known ? 0 : 3), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(records.length, 6);
  return Buffer.concat([header, query.subarray(12, q.end), ...records]);
}

function rr(type: number, ttl: number, data: Buffer): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(0xc00c, 0); // the question's name
  head.writeUInt16BE(type, 2);
  head.writeUInt16BE(1, 4); // IN
  head.writeUInt32BE(ttl, 6);
  head.writeUInt16BE(data.length, 10);
  return Buffer.concat([head, data]);
}

function name(text: string): Buffer {
  const parts = text.replace(/\.$/, '').split('.').filter((p) => p !== '');
  return Buffer.concat([...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'ascii')])), Buffer.from([0])]);
}

function ipv4(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

function ipv6(address: string): Buffer {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, ''];
  const h = head === '' ? [] : head!.split(':');
  const tl = tail === '' || tail === undefined ? [] : tail.split(':');
  const groups = [...h, ...Array(8 - h.length - tl.length).fill('0'), ...tl];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}
