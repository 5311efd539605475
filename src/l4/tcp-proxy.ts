// One L4 TCP listener: plain TCP to one pool, or TLS passthrough routed by the ClientHello's SNI.
//
// A connection's life: accept (paused) → optional preface (a PROXY header from a front balancer
// when the listener accepts one; the ClientHello for passthrough), bounded in bytes and time →
// pick a backend with the pool's policy over the shared table → connect with a timeout, moving on
// to another backend after a connect failure, within `retries`, before any byte has gone to the
// client → optional PROXY header to the backend → Relay (relay.ts) until both sides are done.
//
// Shared-table accounting: OPEN_CONNS of a slot is incremented when a connect to it starts (so
// concurrent picks already see it) and decremented exactly once, when that attempt fails or when
// the relay that owns it closes. Connect failures and timeouts count in ERR_CONNECT / ERR_TIMEOUT
// and feed passive outlier detection (as http/context.ts does for L7); a move to another backend
// counts in RETRIES of the one that failed.

import net from 'node:net';
import { NO_HASH, hashString } from '../balancer/hash.js';
import type { PickContext } from '../balancer/policy.js';
import type { OutlierDetector } from '../health/outlier.js';
import { C } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';
import { ConnLedger } from './ledger.js';
import { IdleSweeper, type IdleMember } from './idle.js';
import type { L4Pool, SniTable } from './pool.js';
import { PROXY_DONE, PROXY_MORE, ProxyHeaderDecoder, encodeV1, encodeV2, socketAddresses, type ProxyAddresses } from './proxy-protocol.js';
import { BackendReads } from './backend-reads.js';
import { DEFAULT_READ_BUFFER_BYTES, ReadBuffers } from './read-buffers.js';
import { DEFAULT_MAX_BUFFERED, Relay, type ByteCounters } from './relay.js';
import { ClientHelloReader, DEFAULT_MAX_HELLO_BYTES, HELLO_MALFORMED, HELLO_MORE } from './sni.js';

export interface TcpProxyOptions {
  /** Listener name for stats and logs ("0.0.0.0:5432" when not given). */
  name?: string;
  host: string;
  /** 0 picks a free port (tests); see `address()` after start(). */
  port: number;
  table: SharedTable;
  /** Plain TCP: every connection goes to this pool. Exactly one of `pool` and `sni`. */
  pool?: L4Pool;
  /** TLS passthrough: the ClientHello's server name chooses the pool. */
  sni?: SniTable;
  /** Expect a PROXY v1/v2 header from a front balancer on every connection (reject those without). */
  acceptProxy?: boolean;
  /** Per connect attempt. Default 5 s. */
  connectTimeoutMs?: number;
  /** Close a connection with no bytes either way for this long; 0 = never. Default 10 min. */
  idleTimeoutMs?: number;
  /** Time allowed for the preface (PROXY header, ClientHello) from accept. Default 10 s. */
  prefaceTimeoutMs?: number;
  /** Further backends to try after a connect failure. Default 2. */
  retries?: number;
  /** Client → backend, see relay.ts. Default 64 KiB. */
  maxBuffered?: number;
  /**
   * Size of the buffer a streaming backend connection reads into (backend-reads.ts,
   * read-buffers.ts), at most maxBuffered + 128 KiB; 0 reads the backend like the client, a fresh
   * allocation per read. Default 192 KiB.
   */
  readBufferBytes?: number;
  maxHelloBytes?: number;
  /** Connect failures feed it (and successes clear the streak); null to skip. */
  outliers?: OutlierDetector | null;
  /** This thread's share of OPEN_CONNS, for crash recovery (ledger.ts); one per thread, shared by its listeners. */
  ledger?: ConnLedger;
  backlog?: number;
  /** Told why a client was closed before routing (bad preface, no SNI route, timeout); for logs. */
  onReject?: (reason: string, client: string) => void;
}

export interface TcpProxyStats extends ByteCounters {
  /** Client connections accepted. */
  accepted: number;
  /** Client connections open now (any phase). */
  active: number;
  /** Backend connections established. */
  opened: number;
  connectFailures: number;
  retries: number;
  /** Clients closed because no backend could be reached (none available, or all attempts failed). */
  noBackend: number;
  /** Clients closed for a bad or missing preface (PROXY header, ClientHello) or no SNI route. */
  rejected: number;
  /** Relays closed by the idle timeout. */
  idleClosed: number;
}

/** Per pool of a listener: relays, not client connections (a rejected client has no pool). */
export interface TcpPoolStats {
  /** Backend connections established. */
  opened: number;
  /** Relays open now. */
  active: number;
  connectFailures: number;
  /** Bytes of relays that have closed (open relays: see TcpProxy.relays()). */
  bytesIn: number;
  bytesOut: number;
}

/** Per-connection state until the relay takes over. */
class Conn implements IdleMember {
  active = false;
  idleTicks = 0;
  readonly client: net.Socket;
  readonly owner: TcpProxy;
  chunks: Buffer[] = [];
  decoder: ProxyHeaderDecoder | null = null;
  hello: ClientHelloReader | null = null;
  /** The client as the backend should see it (the PROXY header's source when one was accepted). */
  source: ProxyAddresses | null = null;
  pool: L4Pool | null = null;
  tried: number[] = [];
  slot = -1;
  counted = false;
  backend: net.Socket | null = null;
  relay: Relay | null = null;
  closed = false;
  onData: ((chunk: Buffer) => void) | null = null;
  /** How the backend socket reads (one for every attempt: a failed socket never read). */
  reads: BackendReads | null = null;

  constructor(client: net.Socket, owner: TcpProxy) {
    this.client = client;
    this.owner = owner;
  }

  /** From the preface sweeper, or from the connect sweeper while a backend connect is pending. */
  expire(): void {
    if (this.backend !== null) this.owner.connectTimedOut(this);
    else this.owner.reject(this, 'preface timeout');
  }
}

export class TcpProxy {
  readonly name: string;
  readonly stats: TcpProxyStats = { accepted: 0, active: 0, opened: 0, connectFailures: 0, retries: 0, noBackend: 0, rejected: 0, idleClosed: 0, bytesIn: 0, bytesOut: 0 };
  /** By pool name, created on a pool's first connection. */
  readonly poolStats = new Map<string, TcpPoolStats>();
  readonly #options: TcpProxyOptions;
  readonly #table: SharedTable;
  readonly #ledger: ConnLedger;
  readonly #server: net.Server;
  readonly #conns = new Set<Conn>();
  readonly #idle: IdleSweeper;
  readonly #preface: IdleSweeper;
  /** Connect timeouts: members are never marked active, so one expires `connectTimeoutMs` after it joined. */
  readonly #connecting: IdleSweeper;
  readonly #pick: PickContext = { now: 0, exclude: -1, hash: NO_HASH };
  readonly #connectTimeout: number;
  readonly #retries: number;
  readonly #maxBuffered: number;
  readonly #buffers: ReadBuffers | null;
  /** Of backend sockets: one byte above maxBuffered, see the constructor. */
  readonly #highWaterMark: number;
  #pool: L4Pool | null;
  #sni: SniTable | null;
  #draining = false;
  #drained: (() => void) | null = null;

  constructor(options: TcpProxyOptions) {
    if ((options.pool === undefined) === (options.sni === undefined)) throw new TypeError('TcpProxy needs exactly one of `pool` (TCP) and `sni` (TLS passthrough)');
    this.#options = options;
    this.name = options.name ?? `${options.host}:${options.port}`;
    this.#table = options.table;
    this.#ledger = options.ledger ?? new ConnLedger(options.table);
    this.#pool = options.pool ?? null;
    this.#sni = options.sni ?? null;
    this.#connectTimeout = options.connectTimeoutMs ?? 5000;
    this.#retries = options.retries ?? 2;
    this.#maxBuffered = options.maxBuffered ?? DEFAULT_MAX_BUFFERED;
    // One read is what the backend → client direction holds in Sluice at most, so it is kept within
    // the bound the other direction has: maxBuffered + 128 KiB (relay.ts).
    const readBuffer = Math.min(options.readBufferBytes ?? DEFAULT_READ_BUFFER_BYTES, this.#maxBuffered + 131_072);
    this.#buffers = readBuffer > 0 ? new ReadBuffers(readBuffer) : null;
    // Client → backend writes are 'data' chunks of up to 64 KiB: with the default 16 KiB mark each
    // one would schedule a 'drain' tick even when the kernel took it whole. Above maxBuffered, a
    // 'drain' comes exactly when the relay paused the client for a full queue (relay.ts).
    this.#highWaterMark = this.#maxBuffered + 1;
    this.#idle = new IdleSweeper(options.idleTimeoutMs ?? 600_000);
    this.#preface = new IdleSweeper(options.prefaceTimeoutMs ?? 10_000);
    this.#connecting = new IdleSweeper(this.#connectTimeout);
    this.#server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (s) => this.#accept(s));
  }

  /** Listen; resolves with the bound address. */
  start(): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host: this.#options.host, port: this.#options.port, backlog: this.#options.backlog ?? 511 }, () => {
        this.#server.off('error', reject);
        resolve(this.#server.address() as net.AddressInfo);
      });
    });
  }

  address(): net.AddressInfo | null {
    return this.#server.address() as net.AddressInfo | null;
  }

  /** Open relays (admin, status, tests). */
  *relays(): IterableIterator<Relay> {
    for (const c of this.#conns) if (c.relay !== null) yield c.relay;
  }

  /** Bytes of the relays open now, by pool (poolStats counts relays once they close). */
  openPoolBytes(): Map<string, { bytesIn: number; bytesOut: number }> {
    const out = new Map<string, { bytesIn: number; bytesOut: number }>();
    for (const c of this.#conns) {
      if (c.relay === null || c.pool === null) continue;
      const b = out.get(c.pool.name) ?? { bytesIn: 0, bytesOut: 0 };
      b.bytesIn += c.relay.bytesIn;
      b.bytesOut += c.relay.bytesOut;
      out.set(c.pool.name, b);
    }
    return out;
  }

  /**
   * Bytes Sluice holds for open relays right now: what waits in each socket's write queue and what
   * has been read but not yet taken. The relay keeps this bounded per connection.
   */
  bufferedBytes(): number {
    let n = 0;
    for (const r of this.relays()) n += r.client.writableLength + r.client.readableLength + r.backend.writableLength + r.backend.readableLength;
    return n;
  }

  /** Swap routing for new connections (reload, membership change); open ones keep their backend. */
  setRoutes(routes: { pool: L4Pool } | { sni: SniTable }): void {
    if ('pool' in routes) {
      if (this.#pool === null) throw new TypeError('a TLS passthrough listener takes an SniTable');
      this.#pool = routes.pool;
    } else {
      if (this.#sni === null) throw new TypeError('a TCP listener takes a pool');
      this.#sni = routes.sni;
    }
  }

  /**
   * Stop accepting, let open connections finish, and after `timeoutMs` close what is left.
   * Resolves once every connection has closed (its shared-table count released).
   */
  drain(timeoutMs: number): Promise<void> {
    this.#draining = true;
    this.#server.close();
    const done = new Promise<void>((resolve) => {
      if (this.#conns.size === 0) return resolve();
      this.#drained = resolve;
    });
    if (this.#conns.size > 0) {
      const timer = setTimeout(() => {
        for (const c of [...this.#conns]) {
          if (c.relay !== null) c.relay.destroy('aborted');
          else c.client.destroy();
        }
      }, timeoutMs);
      timer.unref();
      void done.then(() => clearTimeout(timer));
    }
    return done.then(() => {
      this.#idle.close();
      this.#preface.close();
      this.#connecting.close();
    });
  }

  #accept(client: net.Socket): void {
    this.stats.accepted++;
    if (this.#draining) {
      client.destroy();
      return;
    }
    this.stats.active++;
    const c = new Conn(client, this);
    this.#conns.add(c);
    client.on('error', ignore);
    client.once('close', () => this.#clientClosed(c));
    if (!this.#options.acceptProxy && this.#sni === null) {
      this.#connect(c);
      return;
    }
    if (this.#options.acceptProxy) c.decoder = new ProxyHeaderDecoder();
    if (this.#sni !== null) c.hello = new ClientHelloReader(this.#options.maxHelloBytes ?? DEFAULT_MAX_HELLO_BYTES);
    c.onData = (chunk) => this.#preamble(c, chunk);
    client.on('data', c.onData);
    // A FIN before the preface is complete: there is nothing to route.
    client.once('end', () => {
      if (c.onData !== null) this.reject(c, 'ended during the preface');
    });
    this.#preface.add(c);
    client.resume();
  }

  /** Preface bytes: PROXY header first (when accepted), then the ClientHello (passthrough). */
  #preamble(c: Conn, chunk: Buffer): void {
    if (c.decoder !== null) {
      const s = c.decoder.push(chunk);
      if (s === PROXY_MORE) return;
      if (s !== PROXY_DONE) return this.reject(c, `PROXY header: ${c.decoder.error || 'missing'}`);
      const h = c.decoder.header!;
      if (!h.local && h.family !== 'unknown') c.source = h;
      chunk = c.decoder.rest;
      c.decoder = null;
      if (c.hello === null) {
        if (chunk.length > 0) c.chunks.push(chunk);
        return this.#routed(c, this.#pool);
      }
      if (chunk.length === 0) return;
    }
    const hello = c.hello!;
    c.chunks.push(chunk); // relayed untouched once a backend is connected
    const s = hello.push(chunk);
    if (s === HELLO_MORE) return;
    if (s === HELLO_MALFORMED) return this.reject(c, `ClientHello: ${hello.error}`);
    const pool = this.#sni!.match(hello.serverName);
    if (pool === null) return this.reject(c, `no route for server name "${hello.serverName}"`);
    this.#routed(c, pool);
  }

  #routed(c: Conn, pool: L4Pool | null): void {
    c.client.pause();
    if (c.onData !== null) c.client.off('data', c.onData);
    c.onData = null;
    this.#preface.delete(c);
    c.pool = pool;
    this.#connect(c);
  }

  /** Close a client whose preface failed (or timed out). Public for Conn.expire. */
  reject(c: Conn, reason: string): void {
    this.#preface.delete(c);
    if (c.closed || c.onData === null) return; // gone, or already rejected or routed
    c.client.off('data', c.onData);
    c.onData = null;
    this.stats.rejected++;
    this.#options.onReject?.(reason, `${c.client.remoteAddress}:${c.client.remotePort}`);
    c.client.destroy();
  }

  #connect(c: Conn): void {
    if (c.closed) return;
    const pool = c.pool ?? this.#pool;
    c.pool = pool;
    if (pool === null) return this.#giveUp(c);
    const p = this.#pick;
    p.now = this.#table.now();
    p.exclude = c.slot;
    p.hash = NO_HASH;
    if (pool.needsHash) {
      // remoteAddress is a getpeername() call: only made when the policy uses the key.
      const ip = c.source?.sourceAddress ?? c.client.remoteAddress;
      if (ip !== undefined) p.hash = hashString(ip);
    }
    let slot = pool.policy.pick(p);
    // One exclusion per pick: if the policy offers a backend this connection already failed on,
    // ask again excluding that one (a few times at most, then take what it gives).
    for (let k = 0; k < 3 && slot >= 0 && c.tried.includes(slot); k++) {
      p.exclude = slot;
      const other = pool.policy.pick(p);
      if (other < 0) break;
      slot = other;
    }
    const backend = slot < 0 ? undefined : pool.backend(slot);
    if (backend === undefined) return this.#giveUp(c);
    c.slot = slot;
    c.tried.push(slot);
    this.#ledger.open(slot);
    c.counted = true;
    let onread: net.OnReadOpts | undefined;
    if (this.#buffers !== null) {
      c.reads ??= new BackendReads(this.#buffers);
      onread = c.reads.onread;
    }
    // writableHighWaterMark reaches the socket's Duplex constructor; @types/node leaves it out here.
    const opts = { host: backend.host, port: backend.port, allowHalfOpen: true, noDelay: true, writableHighWaterMark: this.#highWaterMark, onread };
    const sock = net.connect(opts as net.NetConnectOpts);
    c.backend = sock;
    // The coarse shared timer, not sock.setTimeout: that is a timer per socket, re-armed on reads.
    this.#connecting.add(c);
    const onError = () => this.#failed(c, sock, C.ERR_CONNECT);
    sock.once('error', onError);
    sock.once('connect', () => {
      sock.off('error', onError);
      this.#connecting.delete(c);
      this.#connected(c, sock);
    });
  }

  /** The pending connect of `c` took longer than connectTimeoutMs. Public for Conn.expire. */
  connectTimedOut(c: Conn): void {
    if (c.backend !== null && c.relay === null) this.#failed(c, c.backend, C.ERR_TIMEOUT);
  }

  #failed(c: Conn, sock: net.Socket, column: number): void {
    if (c.backend !== sock) return;
    this.#connecting.delete(c);
    sock.destroy();
    c.backend = null;
    this.#uncount(c);
    const slot = c.slot;
    this.stats.connectFailures++;
    this.#statsOf(c.pool!).connectFailures++;
    this.#table.add(column, slot, 1);
    this.#options.outliers?.onFailure(slot, 'connect', this.#table.now());
    if (c.closed) return;
    if (c.tried.length > this.#retries) return this.#giveUp(c);
    this.stats.retries++;
    this.#table.add(C.RETRIES, slot, 1);
    this.#connect(c);
  }

  #connected(c: Conn, sock: net.Socket): void {
    this.#options.outliers?.onSuccess(c.slot);
    if (c.closed) {
      // The client left while we were connecting: #clientClosed already let go of this attempt.
      sock.destroy();
      return;
    }
    this.stats.opened++;
    const ps = this.#statsOf(c.pool!);
    ps.opened++;
    ps.active++;
    sock.on('error', ignore);
    const version = c.pool!.proxyProtocol;
    if (version !== null) {
      const a = c.source ?? socketAddresses(c.client);
      sock.write(version === 'v1' ? encodeV1(a) : encodeV2(a));
    }
    const slot = c.slot;
    const initial = c.chunks;
    c.chunks = [];
    c.relay = new Relay(
      c.client,
      sock,
      {
        maxBuffered: this.#maxBuffered,
        backendOnread: c.reads !== null,
        sweeper: this.#idle,
        counters: this.stats,
        onClose: (r, reason) => {
          if (reason === 'idle') this.stats.idleClosed++;
          ps.active--;
          ps.bytesIn += r.bytesIn;
          ps.bytesOut += r.bytesOut;
          if (c.counted) {
            c.counted = false;
            this.#ledger.close(slot);
          }
          this.#finish(c);
        },
      },
      initial,
    );
    if (c.reads !== null) c.reads.sink = c.relay;
  }

  /** No backend could take the connection: close the client without having sent it a byte. */
  #giveUp(c: Conn): void {
    if (c.closed) return;
    this.stats.noBackend++;
    const s = c.client;
    s.on('data', () => {}); // discard what it sent so the close is a FIN, not a reset
    s.resume();
    s.destroySoon();
  }

  #clientClosed(c: Conn): void {
    if (c.relay !== null) return; // the relay owns the ending from here
    c.closed = true;
    this.#preface.delete(c);
    if (c.backend !== null) {
      this.#connecting.delete(c);
      c.backend.destroy();
      c.backend = null;
    }
    this.#uncount(c);
    this.#finish(c);
  }

  #statsOf(pool: L4Pool): TcpPoolStats {
    let ps = this.poolStats.get(pool.name);
    if (ps === undefined) {
      ps = { opened: 0, active: 0, connectFailures: 0, bytesIn: 0, bytesOut: 0 };
      this.poolStats.set(pool.name, ps);
    }
    return ps;
  }

  #uncount(c: Conn): void {
    if (!c.counted) return;
    c.counted = false;
    this.#ledger.close(c.slot);
  }

  #finish(c: Conn): void {
    if (!this.#conns.delete(c)) return;
    // Both sockets have closed (or the backend never connected): nothing reads into the buffer or
    // writes from it any more.
    c.reads?.release();
    this.stats.active--;
    if (this.#conns.size === 0 && this.#drained !== null) {
      const resolve = this.#drained;
      this.#drained = null;
      resolve();
    }
  }
}

/** Errors are handled where the socket closes; this only keeps an 'error' from being unhandled. */
function ignore(): void {}
