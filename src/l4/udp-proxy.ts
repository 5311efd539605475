// One L4 UDP listener for one pool. Datagrams from one client address (ip and port) form a session
// that sticks to the backend picked for its first datagram, until nothing has passed either way for
// `sessionIdleMs`. Each session talks to its backend from its own connected socket (so replies are
// told apart by socket, and an ICMP "port unreachable" comes back as an error on it), and replies
// go back to the client from the listening socket, so the client sees the address it wrote to.
//
// Shared-table accounting: a session holds one OPEN_CONNS of its slot from its start to its end,
// released exactly once. A refused backend (ICMP) counts in ERR_CONNECT, feeds outlier detection,
// and ends the session: the client's next datagram starts a new one on a backend picked afresh.
// The session count is bounded; past it, datagrams from new client addresses are dropped.

import dgram from 'node:dgram';
import net from 'node:net';
import { NO_HASH, hashString } from '../balancer/hash.js';
import type { PickContext } from '../balancer/policy.js';
import type { OutlierDetector } from '../health/outlier.js';
import { C } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';
import { ConnLedger } from './ledger.js';
import { IdleSweeper, type IdleMember } from './idle.js';
import { BYTES_ZERO } from './byte-count.js';
import type { L4Pool } from './pool.js';

export interface UdpProxyOptions {
  name?: string;
  host: string;
  port: number;
  table: SharedTable;
  pool: L4Pool;
  /** A session ends after this long without a datagram either way. Default 60 s; 0 = never. */
  sessionIdleMs?: number;
  /** Sessions at once; datagrams from further client addresses are dropped. Default 10,000. */
  maxSessions?: number;
  outliers?: OutlierDetector | null;
  /** This thread's share of OPEN_CONNS, for crash recovery (ledger.ts); one per thread, shared by its listeners. */
  ledger?: ConnLedger;
}

export interface UdpProxyStats {
  datagramsIn: number;
  datagramsOut: number;
  bytesIn: number;
  bytesOut: number;
  sessionsOpened: number;
  sessionsActive: number;
  sessionsExpired: number;
  /** Datagrams dropped: session table full, no backend available, or a full pre-connect queue. */
  dropped: number;
  /** Sessions ended because the backend refused (ICMP port unreachable) or the socket failed. */
  backendErrors: number;
}

/** Datagrams held per session while its socket connects (the first is usually the only one). */
const MAX_PENDING = 16;

class Session implements IdleMember {
  active = false;
  idleTicks = 0;
  sweepIndex = -1;
  pending: Buffer[] | null = [];
  closed = false;
  constructor(
    readonly owner: UdpProxy,
    readonly key: string,
    readonly address: string,
    readonly port: number,
    readonly slot: number,
    readonly socket: dgram.Socket,
  ) {}

  expire(): void {
    this.owner.end(this, 'idle');
  }
}

export class UdpProxy {
  readonly name: string;
  readonly stats: UdpProxyStats = { datagramsIn: 0, datagramsOut: 0, bytesIn: BYTES_ZERO, bytesOut: BYTES_ZERO, sessionsOpened: 0, sessionsActive: 0, sessionsExpired: 0, dropped: 0, backendErrors: 0 };
  readonly #options: UdpProxyOptions;
  readonly #table: SharedTable;
  readonly #ledger: ConnLedger;
  readonly #socket: dgram.Socket;
  readonly #sessions = new Map<string, Session>();
  readonly #idle: IdleSweeper;
  readonly #maxSessions: number;
  readonly #pick: PickContext = { now: 0, exclude: -1, hash: NO_HASH };
  #pool: L4Pool;
  #closed = false;

  constructor(options: UdpProxyOptions) {
    this.#options = options;
    this.name = options.name ?? `udp ${options.host}:${options.port}`;
    this.#table = options.table;
    this.#ledger = options.ledger ?? new ConnLedger(options.table);
    this.#pool = options.pool;
    this.#maxSessions = options.maxSessions ?? 10_000;
    this.#idle = new IdleSweeper(options.sessionIdleMs ?? 60_000);
    this.#socket = dgram.createSocket({ type: net.isIPv6(options.host) ? 'udp6' : 'udp4' });
    this.#socket.on('message', (msg, rinfo) => this.#fromClient(msg, rinfo));
    this.#socket.on('error', () => {}); // per-datagram send errors; the socket stays usable
  }

  start(): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#socket.once('error', reject);
      this.#socket.bind(this.#options.port, this.#options.host, () => {
        this.#socket.off('error', reject);
        this.#idle.start(); // for the listener's life (idle.ts); close() stops it
        resolve(this.#socket.address());
      });
    });
  }

  address(): net.AddressInfo {
    return this.#socket.address();
  }

  get sessions(): number {
    return this.#sessions.size;
  }

  /** New sessions use `pool`; existing ones keep their backend until they expire. */
  setPool(pool: L4Pool): void {
    this.#pool = pool;
  }

  /** Stop: replies can only leave through the listening socket, so every session ends with it. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    for (const s of [...this.#sessions.values()]) this.end(s, 'closed');
    this.#idle.close();
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }

  #fromClient(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    this.stats.datagramsIn++;
    this.stats.bytesIn += msg.length;
    const key = `${rinfo.address}|${rinfo.port}`;
    let s = this.#sessions.get(key);
    if (s === undefined) {
      const opened = this.#open(key, rinfo);
      if (opened === null) {
        this.stats.dropped++;
        return;
      }
      s = opened;
    }
    s.active = true;
    if (s.pending !== null) {
      if (s.pending.length < MAX_PENDING) s.pending.push(msg);
      else this.stats.dropped++;
      return;
    }
    s.socket.send(msg);
  }

  #open(key: string, rinfo: dgram.RemoteInfo): Session | null {
    if (this.#closed || this.#sessions.size >= this.#maxSessions) return null;
    const pool = this.#pool;
    const p = this.#pick;
    p.now = this.#table.now();
    p.exclude = -1;
    p.hash = hashString(rinfo.address);
    const slot = pool.policy.pick(p);
    const backend = slot < 0 ? undefined : pool.backend(slot);
    if (backend === undefined) return null;
    const socket = dgram.createSocket({ type: net.isIPv6(backend.host) ? 'udp6' : 'udp4' });
    const s = new Session(this, key, rinfo.address, rinfo.port, slot, socket);
    this.#sessions.set(key, s);
    this.#ledger.open(slot);
    this.stats.sessionsOpened++;
    this.stats.sessionsActive++;
    this.#idle.add(s);
    socket.on('message', (reply) => {
      // A connected socket only receives from its backend.
      s.active = true;
      this.stats.datagramsOut++;
      this.stats.bytesOut += reply.length;
      this.#socket.send(reply, s.port, s.address);
    });
    socket.on('error', () => {
      this.stats.backendErrors++;
      this.#table.add(C.ERR_CONNECT, slot, 1);
      this.#options.outliers?.onFailure(slot, 'connect', this.#table.now());
      this.end(s, 'error');
    });
    socket.connect(backend.port, backend.host, () => {
      if (s.closed) return;
      const pending = s.pending!;
      s.pending = null;
      for (const m of pending) socket.send(m);
    });
    return s;
  }

  /** End a session once (idle expiry, backend error, close). Public for Session.expire. */
  end(s: Session, why: 'idle' | 'error' | 'closed'): void {
    if (s.closed) return;
    s.closed = true;
    if (why === 'idle') this.stats.sessionsExpired++;
    this.#idle.delete(s);
    this.#sessions.delete(s.key);
    this.stats.sessionsActive--;
    this.#ledger.close(s.slot);
    try {
      s.socket.close();
    } catch {
      // already closed by a failed bind/connect
    }
  }
}
