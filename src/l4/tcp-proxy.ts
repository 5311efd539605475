// One L4 TCP listener: plain TCP to one pool, or TLS passthrough routed by the ClientHello's SNI.
//
// Sockets are Node's libuv handles used directly (src/net/uv.ts, and docs/l4.md "Raw handles" for
// the figures that chose them over net.Socket).
//
// A connection's life: accept (not reading) → optional preface (a PROXY header from a front balancer
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

import dns from 'node:dns';
import net from 'node:net';
import { NO_HASH, hashString } from '../balancer/hash.js';
import type { PickContext } from '../balancer/policy.js';
import type { OutlierDetector } from '../health/outlier.js';
import { C } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';
import { BYTES_ZERO } from './byte-count.js';
import { ConnLedger } from './ledger.js';
import { IdleSweeper, type IdleMember } from './idle.js';
import type { L4Pool, SniTable } from './pool.js';
import { RawConnector } from '../net/raw-connect.js';
import { connect as uvConnect, listen, localAddress, newSocket, peerAddress, readResult, ShutdownWrap, UV_EOF, type TcpHandle } from '../net/uv.js';
import { PROXY_DONE, PROXY_MORE, ProxyHeaderDecoder, encodeV1, encodeV2, handleAddresses, type ProxyAddresses } from './proxy-protocol.js';
import { DEFAULT_READ_BUFFER_BYTES, ReadBuffers } from './read-buffers.js';
import { objectArray } from './object-array.js';
import { DEFAULT_MAX_BUFFERED, Relay, relayRead, type ByteCounters, type RelayedHandle, type RelayEnd, type RelayOptions } from './relay.js';
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
  /** With readBufferBytes, what one direction may hold: a read is at most maxBuffered + 128 KiB. Default 64 KiB. */
  maxBuffered?: number;
  /**
   * Size of the buffer a streaming side reads into (relay-reads.ts, read-buffers.ts), at most
   * maxBuffered + 128 KiB, at least 1 KiB. Default 192 KiB.
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

/** Hosts seen, whether each is an IP literal: net.isIP is a regular expression, and this is per connection. */
const ipLiteral = new Map<string, boolean>();
function isIpLiteral(host: string): boolean {
  let yes = ipLiteral.get(host);
  if (yes === undefined) {
    yes = net.isIP(host) !== 0;
    if (ipLiteral.size < 4096) ipLiteral.set(host, yes);
  }
  return yes;
}

/** Per-connection state until the relay takes over. */
class Conn implements IdleMember {
  active = false;
  idleTicks = 0;
  sweepIndex = -1;
  /** Where TcpProxy's list of connections keeps this one (-1 once finished). */
  listIndex = -1;
  readonly client: RelayedHandle;
  readonly owner: TcpProxy;
  /** Preface bytes to relay once connected (null: none; plain TCP never allocates it). */
  chunks: Buffer[] | null = null;
  decoder: ProxyHeaderDecoder | null = null;
  hello: ClientHelloReader | null = null;
  /** Reading the preface (PROXY header, ClientHello); cleared once routed or rejected. */
  prefacing = false;
  /** The client as the backend should see it (the PROXY header's source when one was accepted). */
  source: ProxyAddresses | null = null;
  pool: L4Pool | null = null;
  /** Connect attempts so far. */
  attempts = 0;
  /** Slots whose connect failed (null until one does: most connections never need it). */
  failed: number[] | null = null;
  slot = -1;
  counted = false;
  /** The backend handle while connecting to an IP, then the relay's. */
  backend: TcpHandle | null = null;
  /** Connecting to a backend given by name (lookup, then each address in turn). */
  connector: RawConnector | null = null;
  relay: Relay | null = null;
  /** The pool's counters, once relaying. */
  stats: TcpPoolStats | null = null;
  /** The client is closing or closed before a relay took it. */
  closed = false;

  constructor(client: RelayedHandle, owner: TcpProxy) {
    this.client = client;
    this.owner = owner;
  }

  /** From the preface sweeper, or from the connect sweeper while a backend connect is pending. */
  expire(): void {
    if (this.backend !== null || this.connector !== null) this.owner.connectTimedOut(this);
    else this.owner.reject(this, 'preface timeout');
  }
}

export class TcpProxy {
  readonly name: string;
  /** Byte counts start as doubles (byte-count.ts says why). */
  readonly stats: TcpProxyStats = { accepted: 0, active: 0, opened: 0, connectFailures: 0, retries: 0, noBackend: 0, rejected: 0, idleClosed: 0, bytesIn: BYTES_ZERO, bytesOut: BYTES_ZERO };
  /**
   * By pool name, created with the routes (constructor, setRoutes) for every pool they name, not on a
   * pool's first connection: that branch, taken by a second pool long after the connect path was
   * optimised, deoptimised it (docs/l4.md, "Benchmark"). A pool a reload drops keeps its entry.
   */
  readonly poolStats = new Map<string, TcpPoolStats>();
  readonly #options: TcpProxyOptions;
  readonly #table: SharedTable;
  readonly #ledger: ConnLedger;
  #server: TcpHandle | null = null;
  /** Open connections, each knowing its index (a swap with the last removes one: no hashing; idle.ts says why). */
  readonly #conns = objectArray<Conn>();
  readonly #idle: IdleSweeper;
  readonly #preface: IdleSweeper;
  /** Connect timeouts: members are never marked active, so one expires `connectTimeoutMs` after it joined. */
  readonly #connecting: IdleSweeper;
  readonly #pick: PickContext = { now: 0, exclude: -1, hash: NO_HASH };
  readonly #connectTimeout: number;
  readonly #retries: number;
  readonly #buffers: ReadBuffers;
  /** Shared by every relay of this listener (relay.ts says why not one per connection). */
  readonly #relayOptions: RelayOptions;
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
    // One read is what a direction holds in Sluice at most (relay.ts), so the read size is the
    // bound: maxBuffered + 128 KiB, as before reads were owned.
    const maxBuffered = options.maxBuffered ?? DEFAULT_MAX_BUFFERED;
    this.#buffers = new ReadBuffers(Math.min(options.readBufferBytes ?? DEFAULT_READ_BUFFER_BYTES, maxBuffered + 131_072));
    this.#idle = new IdleSweeper(options.idleTimeoutMs ?? 600_000);
    this.#preface = new IdleSweeper(options.prefaceTimeoutMs ?? 10_000);
    this.#connecting = new IdleSweeper(this.#connectTimeout);
    this.#relayOptions = { buffers: this.#buffers, sweeper: this.#idle, counters: this.stats, onClose: (r, reason) => this.#relayClosed(r, reason) };
    this.#addPoolStats();
  }

  /** Listen; resolves with the bound address. A host name is looked up once, here. */
  async start(): Promise<net.AddressInfo> {
    const host = this.#options.host;
    const ip = host === '' || net.isIP(host) !== 0 ? host : (await dns.promises.lookup(host)).address;
    this.#server = listen(ip, this.#options.port, this.#options.backlog ?? 511, (h) => this.#accept(h));
    // For the listener's life (idle.ts says why); drain() stops them once the last connection is gone.
    this.#idle.start();
    this.#preface.start();
    this.#connecting.start();
    return this.address()!;
  }

  address(): net.AddressInfo | null {
    const a = this.#server === null ? null : localAddress(this.#server);
    return a === null ? null : { address: a.address!, family: a.family!, port: a.port! };
  }

  /** Open relays (admin, status, tests). */
  *relays(): IterableIterator<Relay> {
    for (const c of [...this.#conns]) if (c.relay !== null) yield c.relay;
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
   * Bytes Sluice holds for open relays right now beyond the reads in hand: what libuv has queued
   * for each side. The relay keeps this to one read per direction.
   */
  bufferedBytes(): number {
    let n = 0;
    for (const r of this.relays()) n += r.buffered;
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
    this.#addPoolStats();
  }

  /** An entry in poolStats for every pool the routes name (see poolStats). */
  #addPoolStats(): void {
    const pools = this.#sni !== null ? this.#sni.pools() : this.#pool !== null ? [this.#pool] : [];
    for (const pool of pools) this.#statsOf(pool);
  }

  /**
   * Stop accepting, let open connections finish, and after `timeoutMs` close what is left.
   * Resolves once every connection has closed (its shared-table count released).
   */
  drain(timeoutMs: number): Promise<void> {
    this.#draining = true;
    this.#server?.close();
    this.#server = null;
    const done = new Promise<void>((resolve) => {
      if (this.#conns.length === 0) return resolve();
      this.#drained = resolve;
    });
    if (this.#conns.length > 0) {
      const timer = setTimeout(() => {
        for (const c of [...this.#conns]) {
          if (c.relay !== null) c.relay.destroy('aborted');
          else this.#dropClient(c);
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

  #accept(client: TcpHandle): void {
    this.stats.accepted++;
    if (this.#draining) {
      client.close();
      return;
    }
    this.stats.active++;
    // No setNoDelay: the listening socket has it, and accepted sockets inherit it (uv.ts listen).
    // Every read of this handle lands in a buffer RelayReads hands it from here on (relay-reads.ts).
    client.useUserBuffer(this.#buffers.shared);
    const relayed = client as RelayedHandle;
    relayed.way = null;
    relayed.onread = relayRead; // a preface reader replaces it until routed
    const c = new Conn(relayed, this);
    c.listIndex = this.#conns.length;
    this.#conns.push(c);
    if (!this.#options.acceptProxy && this.#sni === null) {
      this.#connect(c);
      return;
    }
    if (this.#options.acceptProxy) c.decoder = new ProxyHeaderDecoder();
    if (this.#sni !== null) c.hello = new ClientHelloReader(this.#options.maxHelloBytes ?? DEFAULT_MAX_HELLO_BYTES);
    c.prefacing = true;
    client.onread = () => {
      const n = readResult();
      if (n > 0) {
        // The shared buffer is the next read's: what is kept (relayed later) is a copy.
        this.#preamble(c, this.#buffers.copyOut(n));
      } else if (n === UV_EOF) this.reject(c, 'ended during the preface'); // nothing to route
      else if (n < 0) this.#dropClient(c);
      return undefined;
    };
    this.#preface.add(c);
    client.readStart();
  }

  /** Preface bytes: PROXY header first (when accepted), then the ClientHello (passthrough). */
  #preamble(c: Conn, chunk: Buffer): void {
    if (!c.prefacing) return;
    if (c.decoder !== null) {
      const s = c.decoder.push(chunk);
      if (s === PROXY_MORE) return;
      if (s !== PROXY_DONE) return this.reject(c, `PROXY header: ${c.decoder.error || 'missing'}`);
      const h = c.decoder.header!;
      if (!h.local && h.family !== 'unknown') c.source = h;
      chunk = c.decoder.rest;
      c.decoder = null;
      if (c.hello === null) {
        if (chunk.length > 0) (c.chunks ??= []).push(chunk);
        return this.#routed(c, this.#pool);
      }
      if (chunk.length === 0) return;
    }
    const hello = c.hello!;
    (c.chunks ??= []).push(chunk); // relayed untouched once a backend is connected
    const s = hello.push(chunk);
    if (s === HELLO_MORE) return;
    if (s === HELLO_MALFORMED) return this.reject(c, `ClientHello: ${hello.error}`);
    const pool = this.#sni!.match(hello.serverName);
    if (pool === null) return this.reject(c, `no route for server name "${hello.serverName}"`);
    this.#routed(c, pool);
  }

  #routed(c: Conn, pool: L4Pool | null): void {
    c.client.readStop();
    c.client.onread = relayRead;
    c.prefacing = false;
    this.#preface.delete(c);
    c.pool = pool;
    this.#connect(c);
  }

  /** Close a client whose preface failed (or timed out). Public for Conn.expire. */
  reject(c: Conn, reason: string): void {
    this.#preface.delete(c);
    if (c.closed || !c.prefacing) return; // gone, or already rejected or routed
    c.prefacing = false;
    this.stats.rejected++;
    const peer = peerAddress(c.client);
    this.#options.onReject?.(reason, peer === null ? 'unknown' : `${peer.address}:${peer.port}`);
    this.#dropClient(c);
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
      // A getpeername() call: only made when the policy uses the key.
      const ip = c.source?.sourceAddress ?? peerAddress(c.client)?.address;
      if (ip !== undefined) p.hash = hashString(ip);
    }
    let slot = pool.policy.pick(p);
    // One exclusion per pick: if the policy offers a backend this connection already failed on,
    // ask again excluding that one (a few times at most, then take what it gives).
    const failed = c.failed;
    for (let k = 0; k < 3 && slot >= 0 && failed !== null && failed.includes(slot); k++) {
      p.exclude = slot;
      const other = pool.policy.pick(p);
      if (other < 0) break;
      slot = other;
    }
    const backend = slot < 0 ? undefined : pool.backend(slot);
    if (backend === undefined) return this.#giveUp(c);
    c.slot = slot;
    c.attempts++;
    this.#ledger.open(slot);
    c.counted = true;
    // The coarse shared timer covers the lookup and the connect.
    this.#connecting.add(c);
    if (!isIpLiteral(backend.host)) {
      // A backend given by name (discovery may give one): looked up per connection and each address
      // tried in turn, as net.connect would (src/net/raw-connect.ts).
      const connector = new RawConnector(backend.host, backend.port, (h) => {
        c.connector = null;
        if (h === null) return this.#failed(c, C.ERR_CONNECT);
        this.#startReading(h);
        this.#connecting.delete(c);
        this.#connected(c, h);
      });
      c.connector = connector;
      return;
    }
    const h = newSocket();
    c.backend = h;
    const err = uvConnect(h, backend.host, backend.port, (status) => {
      if (c.backend !== h) return; // timed out or given up: the handle is already closed
      if (status !== 0) return this.#failed(c, C.ERR_CONNECT);
      this.#connecting.delete(c);
      this.#connected(c, h);
    });
    if (err !== 0) return this.#failed(c, C.ERR_CONNECT);
    // Reading starts with the connect (the socket exists from here), not after it: libuv then
    // keeps the socket's epoll entry across the connect's completion instead of re-adding it (an
    // EEXIST and a retry: a system call per connection).
    this.#startReading(h);
  }

  /**
   * A backend handle reads into the listener's buffers from here, for the relay its connect will
   * start (relay.ts relayRead: no read can come before that).
   */
  #startReading(h: TcpHandle): void {
    const relayed = h as RelayedHandle;
    relayed.way = null;
    relayed.onread = relayRead;
    h.useUserBuffer(this.#buffers.shared);
    h.readStart();
  }

  /** The pending connect of `c` took longer than connectTimeoutMs. Public for Conn.expire. */
  connectTimedOut(c: Conn): void {
    if ((c.backend !== null || c.connector !== null) && c.relay === null) this.#failed(c, C.ERR_TIMEOUT);
  }

  /** The connect attempt of `c` failed or timed out: count it, then the next backend or give up. */
  #failed(c: Conn, column: number): void {
    this.#connecting.delete(c);
    this.#abandon(c);
    this.#uncount(c);
    const slot = c.slot;
    this.stats.connectFailures++;
    this.#statsOf(c.pool!).connectFailures++;
    this.#table.add(column, slot, 1);
    this.#options.outliers?.onFailure(slot, 'connect', this.#table.now());
    (c.failed ??= []).push(slot);
    if (c.closed) return;
    if (c.attempts > this.#retries) return this.#giveUp(c);
    this.stats.retries++;
    this.#table.add(C.RETRIES, slot, 1);
    this.#connect(c);
  }

  #connected(c: Conn, backend: TcpHandle): void {
    this.#options.outliers?.onSuccess(c.slot);
    if (c.closed) {
      // The client went while we were connecting (drain): #dropClient already let go of this attempt.
      backend.close();
      return;
    }
    this.stats.opened++;
    const ps = this.#statsOf(c.pool!);
    ps.opened++;
    ps.active++;
    backend.setNoDelay(true);
    c.stats = ps;
    const version = c.pool!.proxyProtocol;
    const first = c.chunks;
    c.chunks = null;
    let initial = first === null ? null : first.length === 1 ? first[0]! : Buffer.concat(first);
    if (version !== null) {
      const a = c.source ?? handleAddresses(c.client);
      const header = version === 'v1' ? encodeV1(a) : encodeV2(a);
      initial = initial === null ? header : Buffer.concat([header, initial]);
    }
    // Reading since #startReading, through relayRead.
    c.relay = new Relay(c.client, backend as RelayedHandle, this.#relayOptions, initial, c);
  }

  /** A relay has closed (RelayOptions.onClose, one function for the listener). */
  #relayClosed(r: Relay, reason: RelayEnd): void {
    const c = r.owner as Conn;
    const ps = c.stats!;
    if (reason === 'idle') this.stats.idleClosed++;
    ps.active--;
    ps.bytesIn += r.bytesIn;
    ps.bytesOut += r.bytesOut;
    if (c.counted) {
      c.counted = false;
      this.#ledger.close(c.slot);
    }
    this.#finish(c);
  }

  /**
   * No backend could take the connection: close the client without having sent it a byte. What it
   * sent is read and dropped, and the FIN goes out before the close, so it sees an end, not a reset.
   */
  #giveUp(c: Conn): void {
    if (c.closed) return;
    this.stats.noBackend++;
    const h = c.client;
    h.onread = () => {
      if (readResult() < 0) this.#dropClient(c);
      return undefined;
    };
    h.readStart();
    const req = new ShutdownWrap();
    req.handle = h;
    req.oncomplete = () => this.#dropClient(c);
    if (h.shutdown(req) !== 0) this.#dropClient(c);
  }

  /** Close a client no relay owns (rejected, given up, gone, drained), letting go of any connect attempt. */
  #dropClient(c: Conn): void {
    if (c.closed || c.relay !== null) return;
    c.closed = true;
    c.prefacing = false;
    this.#preface.delete(c);
    this.#connecting.delete(c);
    this.#abandon(c);
    this.#uncount(c);
    // The descriptor is closed inside this call; no notification is needed (see relay.ts #close).
    c.client.close();
    this.#finish(c);
  }

  /** Let go of a connect in progress, if any (never of a relay's backend). */
  #abandon(c: Conn): void {
    if (c.backend !== null) {
      c.backend.close();
      c.backend = null;
    }
    if (c.connector !== null) {
      c.connector.cancel();
      c.connector = null;
    }
  }

  /**
   * The pool's entry, created if missing: by #addPoolStats for every pool the routes name, so on a
   * connection's path (its pool was named when it was picked) it is only ever found.
   */
  #statsOf(pool: L4Pool): TcpPoolStats {
    let ps = this.poolStats.get(pool.name);
    if (ps === undefined) {
      ps = { opened: 0, active: 0, connectFailures: 0, bytesIn: BYTES_ZERO, bytesOut: BYTES_ZERO };
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
    const conns = this.#conns;
    const i = c.listIndex;
    if (i < 0) return;
    const last = conns.pop()!;
    if (last !== c) {
      conns[i] = last;
      last.listIndex = i;
    }
    c.listIndex = -1;
    this.stats.active--;
    if (conns.length === 0 && this.#drained !== null) {
      const resolve = this.#drained;
      this.#drained = null;
      resolve();
    }
  }
}
