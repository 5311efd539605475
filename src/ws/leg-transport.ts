// The byte pipe under an upstream WebSocket leg (upstream-leg.ts): connect, write, read, pause,
// FIN, close. Two implementations, chosen per connection:
// - tcp-transport.ts: a libuv TCP handle used directly (src/net/uv.ts), for plain backends given
//   as an IP address, the common case and the hot one. No stream.Duplex or EventEmitter between
//   the socket and the frames: measured in docs/websocket.md ("Backend leg on a raw handle").
// - stream-transport.ts: a net.Socket or tls.TLSSocket, for `https://` backends (TLS) and for
//   backends given by name (net.connect's DNS lookup and address-family fallback).

import { isIP } from 'node:net';
import type tls from 'node:tls';
import { StreamTransport } from './stream-transport.js';
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

/** Start connecting to `target`: a raw TCP handle for a plain IP address, a Node socket otherwise. */
export function openTransport(target: TransportTarget, events: TransportEvents): LegTransport {
  if (target.tls === null && isIP(target.host) !== 0) return new TcpTransport(target.host, target.port, events);
  return new StreamTransport(target, events);
}
