// Node's own libuv TCP handles (the `tcp_wrap` and `stream_wrap` bindings under `net.Socket`),
// used directly where a net.Socket costs more than the work it carries.
//
// Why: a net.Socket is a stream.Duplex plus an EventEmitter around one of these handles. Measured
// on the L4 connection-rate bench (docs/l4.md, "Raw handles"): a relay built on net.Socket spent
// 98–118 µs of CPU per proxied connection, 55–77 µs of it in user space, and the same relay on
// these handles 50–53 µs, 10–13 µs in user space; HAProxy spends about 47. The handles are what
// net.Socket itself calls, so the system calls are the same ones minus the stream machinery's.
//
// The contract, learned from Node 20's lib/net.js and lib/internal/stream_base_commons.js:
// - reads: `useUserBuffer(buf)` then `readStart()`; `onread` is called with the byte count (or a
//   negative libuv error, UV_EOF at end of stream) in streamBaseState[kReadBytesOrError]; the
//   bytes are in the user buffer, and returning another Uint8Array makes it the next read's buffer;
// - writes: `writeBuffer(req, buf)` first tries the write right away; when the kernel took it all,
//   streamBaseState[kLastWriteWasAsync] is 0 and req.oncomplete is never called. Otherwise libuv
//   keeps a pointer into `buf` until `oncomplete(status)` (this = req): the bytes must not change
//   until then. `writeUtf8String` copies what it could not write, so a string may be dropped;
// - `shutdown(req)` sends FIN after queued writes; `close(cb)` frees the handle (its descriptor
//   is closed inside the call; `cb` only reports it a loop turn later); `reset(cb)` closes with RST,
//   but not while a shutdown is pending: it then fails with EINVAL and Node counts the handle as
//   closing all the same, so a close() after it does nothing (src/l4/relay.ts never tries).
// `process.binding` gives these on Node 20 and 22 (the allowlist keeps tcp_wrap, stream_wrap and
// uv); test/net/uv.test.ts pins the contract on the Node in use.

import { isIPv4, isIPv6 } from 'node:net';
import { getSystemErrorName } from 'node:util';

/** A request object libuv completes: WriteWrap, ShutdownWrap, TCPConnectWrap. */
export interface UvReq {
  oncomplete: ((this: UvReq, status: number, ...rest: unknown[]) => void) | null;
  handle?: TcpHandle;
  [key: string]: unknown;
}

export interface PeerAddress {
  address?: string;
  family?: string;
  port?: number;
}

/** The methods of a tcp_wrap TCP handle Sluice uses. */
export interface TcpHandle {
  onread: (() => Uint8Array | undefined) | null;
  onconnection: ((status: number, client: TcpHandle | undefined) => void) | null;
  /** Bytes libuv holds in its write queue for this handle. */
  readonly writeQueueSize: number;
  readonly fd: number;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buf: Uint8Array): void;
  writeBuffer(req: UvReq, buf: Uint8Array): number;
  writeUtf8String(req: UvReq, s: string): number;
  writeLatin1String(req: UvReq, s: string): number;
  writev(req: UvReq, chunks: unknown[], allBuffers: boolean): number;
  shutdown(req: UvReq): number;
  close(cb?: () => void): void;
  reset(cb?: () => void): number;
  setNoDelay(on: boolean): number;
  getpeername(out: PeerAddress): number;
  getsockname(out: PeerAddress): number;
  bind(address: string, port: number): number;
  bind6(address: string, port: number, flags: number): number;
  listen(backlog: number): number;
  connect(req: UvReq, address: string, port: number): number;
  connect6(req: UvReq, address: string, port: number): number;
  ref(): void;
  unref(): void;
}

type Binding = Record<string, unknown>;
const proc = process as unknown as { binding(name: string): Binding };
const bind = (name: string): Binding => proc.binding(name);
const tcpWrap = bind('tcp_wrap') as { TCP: new (type: number) => TcpHandle; TCPConnectWrap: new () => UvReq; constants: { SOCKET: number; SERVER: number } };
const streamWrap = bind('stream_wrap') as {
  WriteWrap: new () => UvReq;
  ShutdownWrap: new () => UvReq;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
};
const uv = bind('uv') as { UV_EOF: number; UV_ENOTCONN: number };

export const TCP = tcpWrap.TCP;
export const TCPConnectWrap = tcpWrap.TCPConnectWrap;
export const WriteWrap = streamWrap.WriteWrap;
export const ShutdownWrap = streamWrap.ShutdownWrap;
export const SOCKET = tcpWrap.constants.SOCKET;
export const SERVER = tcpWrap.constants.SERVER;
export const UV_EOF = uv.UV_EOF;
export const UV_ENOTCONN = uv.UV_ENOTCONN;

const state = streamWrap.streamBaseState;
const READ_BYTES = streamWrap.kReadBytesOrError;
const LAST_ASYNC = streamWrap.kLastWriteWasAsync;

/**
 * The buffer reads land in for every connection of this thread whose consumer is done with a read
 * when its callback returns (the HTTP upstream client, the WebSocket backend leg): reads and their
 * callbacks run one at a time, and what a consumer keeps past the callback it copies. So one buffer
 * per thread, not one per connection or a fresh one per read. (The L4 relay has its own scheme,
 * src/l4/read-buffers.ts: it writes straight from what it reads.)
 */
export const sharedReadBuffer: Buffer = Buffer.allocUnsafeSlow(64 * 1024);

/** In `onread`: bytes read into the user buffer, or a negative libuv error (UV_EOF: end of stream). */
export function readResult(): number {
  return state[READ_BYTES]!;
}

/**
 * Whether libuv kept part of the last write and will call its req's oncomplete. Read it right after
 * the write call: every stream write of this thread (a log line to stdout too) overwrites it.
 */
export function lastWriteWasAsync(): boolean {
  return state[LAST_ASYNC] !== 0;
}

/**
 * The request for this thread's next write. A write the kernel takes whole never binds its request
 * (Node tries the write before it makes a native one), so one object serves every such write;
 * heldWrite() hands it to the caller when libuv kept part of a write, and a fresh one takes its
 * place.
 */
let spare: UvReq = new WriteWrap();

/** The request to pass to the next write call (writeBuffer, writeUtf8String, writev). */
export function writeReq(): UvReq {
  return spare;
}

/**
 * Right after a write call made with writeReq() (before anything else writes to a stream): the
 * request when libuv holds part of the write, for the caller to set its oncomplete and to keep
 * what it points into unchanged until that runs; null when the kernel took it all, or when the call
 * failed (`err` ≠ 0, whose request is never reused).
 */
export function heldWrite(err: number): UvReq | null {
  if (err !== 0) {
    spare = new WriteWrap();
    return null;
  }
  if (state[LAST_ASYNC] === 0) return null;
  const req = spare;
  spare = new WriteWrap();
  return req;
}

/** "ECONNREFUSED" for a (negative) libuv error number. */
export function errorName(code: number): string {
  return getSystemErrorName(code);
}

/** A new, unconnected socket handle. */
export function newSocket(): TcpHandle {
  return new TCP(SOCKET);
}

/**
 * Listen on host:port (an IP literal; '' or '0.0.0.0' for every IPv4 address, '::' for every
 * address). Returns the server handle, or throws an Error named after the libuv error.
 *
 * The listening socket has TCP_NODELAY set, and Linux copies it to every socket accepted from it
 * (checked in test/net/uv.test.ts): the accepted handles need no setNoDelay, a system call and a
 * native call per connection fewer.
 */
export function listen(host: string, port: number, backlog: number, onConnection: (client: TcpHandle) => void): TcpHandle {
  const server = new TCP(SERVER);
  const ip = host === '' ? '0.0.0.0' : host;
  let err = isIPv6(ip) ? server.bind6(ip, port, 0) : isIPv4(ip) ? server.bind(ip, port) : -22;
  if (err === 0) err = server.setNoDelay(true);
  if (err === 0) {
    server.onconnection = (status, client) => {
      if (status === 0 && client !== undefined) onConnection(client);
    };
    err = server.listen(backlog);
  }
  if (err !== 0) {
    server.close();
    const e = new Error(`listen ${errorName(err)} ${host}:${port}`) as NodeJS.ErrnoException;
    e.code = errorName(err);
    throw e;
  }
  return server;
}

/**
 * Start connecting `handle` to ip:port (an IP literal). `done(status)` runs once: 0 connected, else
 * a negative libuv error. Returns a libuv error when the connect could not even start (then `done`
 * never runs).
 */
export function connect(handle: TcpHandle, ip: string, port: number, done: (status: number) => void): number {
  const req = new TCPConnectWrap();
  // Called as oncomplete(status, handle, req, readable, writable); `done` reads the first.
  req.oncomplete = done as UvReq['oncomplete'];
  // An IPv6 literal always has a colon, an IPv4 one never (no regular expression per connect).
  return ip.includes(':') ? handle.connect6(req, ip, port) : handle.connect(req, ip, port);
}

/** The address of the other end (a getpeername call), or null when the socket has none. */
export function peerAddress(handle: TcpHandle): PeerAddress | null {
  const out: PeerAddress = {};
  return handle.getpeername(out) === 0 ? out : null;
}

/** This end's address (a getsockname call), or null. */
export function localAddress(handle: TcpHandle): PeerAddress | null {
  const out: PeerAddress = {};
  return handle.getsockname(out) === 0 ? out : null;
}
