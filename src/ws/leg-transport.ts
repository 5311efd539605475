// The byte pipe under an upstream WebSocket leg (upstream-leg.ts): connect, write, read, pause,
// FIN, close. Two implementations, chosen per backend:
// - tcp-transport.ts: a libuv TCP handle used directly (src/net/uv.ts), for plain backends (by
//   address or by name), the common case and the hot one. No stream.Duplex or EventEmitter
//   between the socket and the frames: measured in docs/websocket.md ("the second pass").
// - tls-transport.ts: a tls.TLSSocket, for `https://` backends.

import type tls from 'node:tls';
import { TlsTransport } from './tls-transport.js';
import { TcpTransport } from './tcp-transport.js';

/** What a transport reports to its leg. Every call after `connect()` is asynchronous to the leg's own calls. */
export interface TransportEvents {
  /** Connected: the backend receives what is written from now on. */
  onConnect(): void;
  /** Bytes from the backend, buf[0..len]: valid only during the call (a plain transport reuses one buffer). */
  onData(buf: Buffer, len: number): void;
  /** A write that write() reported as held is done with its buffer: once per such write, in order. */
  onWritten(): void;
  /** The connection failed (`code`: ECONNREFUSED, ECONNRESET, EPIPE...). onClosed follows. */
  onError(code: string): void;
  /** The connection is gone, whatever ended it (the peer, an error, destroy()). Called once. */
  onClosed(): void;
}

export interface LegTransport {
  /** Bytes written but not yet taken by the kernel. */
  readonly queuedBytes: number;
  /** Closed or closing: writes are dropped. */
  readonly closed: boolean;
  /** Write the request head (UTF-8); before the connection is up it waits for it. */
  writeHead(head: string): void;
  /**
   * Write `buf`. Returns false when the transport is done with its bytes already (the kernel took
   * them, or the connection is closed), true when it holds them: then they must not change until
   * the onWritten() that answers this write.
   */
  write(buf: Uint8Array): boolean;
  /** Stop and restart reading (backpressure from the client). */
  pause(): void;
  resume(): void;
  /** Send FIN once queued bytes are out; reading goes on until the peer closes. */
  end(): void;
  /** Close now, queued bytes dropped. onClosed follows. */
  destroy(): void;
}

export interface TransportTarget {
  readonly host: string;
  readonly port: number;
  readonly tls: tls.ConnectionOptions | null;
}

/** Start connecting to `target`: a raw TCP handle for a plain backend, a TLS socket for an https:// one. */
export function openTransport(target: TransportTarget, events: TransportEvents): LegTransport {
  if (target.tls === null) return new TcpTransport(target.host, target.port, events);
  return new TlsTransport(target.host, target.port, target.tls, events);
}
