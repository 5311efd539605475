// An https:// upstream connection: a tls.TLSSocket behind the Transport interface. TLS runs in
// Node's stream machinery (the TLSWrap sits between the socket and its handle), so this one keeps
// net's events and buffering; only plain connections go raw (transport-raw.ts).

import tls from 'node:tls';
import type { Transport, TransportSink } from './transport.js';

const CRLF = '\r\n';

export class TlsTransport implements Transport {
  readonly #socket: tls.TLSSocket;

  constructor(host: string, port: number, options: tls.ConnectionOptions, sink: TransportSink) {
    const socket = tls.connect({ ...options, host, port });
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.once('secureConnect', () => sink.onConnect());
    socket.on('data', (chunk: Buffer) => sink.onData(chunk));
    socket.on('drain', () => sink.onDrain());
    socket.on('end', () => sink.onEnd());
    socket.on('error', (err: NodeJS.ErrnoException) => sink.onError(err.code ?? err.message));
    socket.on('close', () => sink.onClose());
  }

  get needsDrain(): boolean {
    return this.#socket.writableNeedDrain;
  }

  writeText(s: string): boolean {
    return this.#socket.write(s, 'utf8');
  }

  writeBytes(b: Buffer): boolean {
    return this.#socket.write(b);
  }

  writeChunk(b: Buffer): boolean {
    const s = this.#socket;
    s.cork();
    s.write(b.length.toString(16) + CRLF, 'latin1');
    s.write(b);
    const ok = s.write(CRLF, 'latin1');
    s.uncork();
    return ok;
  }

  cork(): void {
    this.#socket.cork();
  }
  uncork(): void {
    this.#socket.uncork();
  }
  pause(): void {
    this.#socket.pause();
  }
  resume(): void {
    this.#socket.resume();
  }
  destroy(): void {
    this.#socket.destroy();
  }
}
