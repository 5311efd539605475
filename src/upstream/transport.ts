// The byte pipe under one upstream connection: what Connection needs from a socket, so it never
// asks which kind it has. Plain http:// backends get a raw libuv TCP handle (transport-raw.ts: no
// stream.Duplex or EventEmitter per request), https:// ones a tls.TLSSocket (transport-tls.ts).

/** What a transport reports to its connection. Every call comes from the event loop, never from
 * inside one of the transport's own methods (failures found while writing are reported later). */
export interface TransportSink {
  /** Connected (TLS: handshake done). Writes made before this are sent now, in order. */
  onConnect(): void;
  /** Bytes read. The view may be of a buffer the next read reuses: copy what outlives the call. */
  onData(chunk: Buffer): void;
  /** Everything a write left queued has gone to the kernel (only after a write returned false). */
  onDrain(): void;
  /** The backend sent FIN. */
  onEnd(): void;
  /** Connect, read or write failed: an error code ("ECONNREFUSED", "ENOTFOUND") or a message. */
  onError(detail: string): void;
  /** The socket is closed for good; called once, after destroy(), whatever came before. */
  onClose(): void;
}

export interface Transport {
  /**
   * Write a string as UTF-8 (the request head: uWS decoded it from UTF-8, so this gives back the
   * client's octets; latin1 would keep each character's low byte only, and U+010D would go out as
   * CR). False: bytes are waiting in user space or in libuv; wait for onDrain.
   */
  writeText(s: string): boolean;
  /** Write bytes as they are. The buffer must not change afterwards (it may be sent later). */
  writeBytes(b: Buffer): boolean;
  /** One piece of a chunked body: size line, the bytes, CRLF. */
  writeChunk(b: Buffer): boolean;
  /** A write returned false and its bytes have not all gone yet. */
  readonly needsDrain: boolean;
  /** Hold writes until the matching uncork(): they go out in one system call. */
  cork(): void;
  uncork(): void;
  /** Stop reading (the client is behind); resume() reads again. */
  pause(): void;
  resume(): void;
  /** Close now (queued writes are dropped); onClose follows. Idempotent. */
  destroy(): void;
}
