// Connecting a raw libuv TCP handle to host:port (HTTP upstream connections, L4 backends given by
// name). libuv connects to IP literals only, so a host name is resolved here, once per connection,
// with dns.lookup: the same resolver, and the same per-connect lookup, as net.connect (an HTTP
// upstream connection lives for many requests, so the lookup is not on the per-request path).
//
// A name with several addresses is tried the way net.connect does it on Node 20 (its default
// autoSelectFamily, "happy eyeballs", RFC 8305): families alternate starting with the first
// answer's, each attempt gets net's attempt timeout before the next address is tried, and the
// first error is the one reported when every address fails. So "localhost" resolving to ::1
// first still reaches a backend listening on 127.0.0.1 only.

import { lookup, type LookupAddress } from 'node:dns';
import { getDefaultAutoSelectFamilyAttemptTimeout, isIP } from 'node:net';
import { constants } from 'node:os';
import { connect, errorName, newSocket, type TcpHandle } from './uv.js';

/** An attempt that outlived net's attempt timeout (a libuv error is a negative errno). */
const ATTEMPT_TIMED_OUT = -constants.errno.ETIMEDOUT;

/** Called once: a connected handle, or null and an error code. Never called after cancel(). */
export type ConnectDone = (handle: TcpHandle | null, error: string) => void;

/** Every address of a host name, as dns.lookup(host, { all: true }) answers. */
export type Resolver = (host: string, done: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

const systemResolver: Resolver = (host, done) => lookup(host, { all: true }, done);

/** Addresses in the order net.connect tries them: alternating families, the first answer's first. */
export function attemptOrder(addresses: readonly LookupAddress[]): string[] {
  if (addresses.length === 0) return [];
  const first = addresses[0]!.family;
  const same = addresses.filter((a) => a.family === first);
  const other = addresses.filter((a) => a.family !== first);
  const out: string[] = [];
  for (let i = 0; i < Math.max(same.length, other.length); i++) {
    if (i < same.length) out.push(same[i]!.address);
    if (i < other.length) out.push(other[i]!.address);
  }
  return out;
}

export class RawConnector {
  readonly #port: number;
  readonly #done: ConnectDone;
  #addresses: string[] = [];
  #next = 0;
  /** The attempt in progress (closed on cancel, on its timeout, or when it fails). */
  #handle: TcpHandle | null = null;
  #timer: NodeJS.Timeout | null = null;
  #firstError = '';
  #over = false;

  /**
   * Starts at once; `done` is never called from inside the constructor. `resolve` is the system's
   * resolver (tests give a name several addresses with another).
   */
  constructor(host: string, port: number, done: ConnectDone, resolve: Resolver = systemResolver) {
    this.#port = port;
    this.#done = done;
    if (isIP(host) !== 0) {
      this.#addresses = [host];
      this.#attempt();
      return;
    }
    resolve(host, (err, addresses) => {
      if (this.#over) return;
      if (err !== null) return this.#finish(null, err.code ?? err.message);
      this.#addresses = attemptOrder(addresses);
      if (this.#addresses.length === 0) return this.#finish(null, 'ENOTFOUND');
      this.#attempt();
    });
  }

  /** Give up (the connection was destroyed): the attempt's handle is closed, `done` never runs. */
  cancel(): void {
    if (this.#over) return;
    this.#over = true;
    this.#drop();
  }

  #attempt(): void {
    const ip = this.#addresses[this.#next++]!;
    const handle = newSocket();
    this.#handle = handle;
    const err = connect(handle, ip, this.#port, (status) => this.#connected(handle, status));
    // Could not even start (a bad address): reported on a later tick, as libuv reports the rest.
    if (err !== 0) process.nextTick(() => this.#connected(handle, err));
    else if (this.#next < this.#addresses.length) {
      this.#timer = setTimeout(() => this.#connected(handle, ATTEMPT_TIMED_OUT), getDefaultAutoSelectFamilyAttemptTimeout());
    }
  }

  #connected(handle: TcpHandle, status: number): void {
    // A late completion of an attempt already given up (its close cancels it with ECANCELED).
    if (this.#over || handle !== this.#handle) return;
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (status === 0) {
      this.#handle = null;
      return this.#finish(handle, '');
    }
    if (this.#firstError === '') this.#firstError = errorName(status);
    this.#drop();
    if (this.#next < this.#addresses.length) this.#attempt();
    else this.#finish(null, this.#firstError);
  }

  #drop(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const h = this.#handle;
    this.#handle = null;
    if (h !== null) h.close();
  }

  #finish(handle: TcpHandle | null, error: string): void {
    this.#over = true;
    this.#done(handle, error);
  }
}
