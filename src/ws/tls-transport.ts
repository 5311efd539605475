// A backend connection over TLS (`https://` backends: wss:// on the backend hop), on Node's
// tls.TLSSocket. Plain backends use tcp-transport.ts.

import tls from 'node:tls';
import type { LegTransport, TransportEvents } from './leg-transport.js';

export class TlsTransport implements LegTransport {
  readonly #socket: tls.TLSSocket;
  readonly #events: TransportEvents;

  constructor(host: string, port: number, options: tls.ConnectionOptions, events: TransportEvents) {
    this.#events = events;
    const socket = tls.connect({ ...options, host, port });
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => events.onData(chunk, chunk.length));
    socket.once('connect', () => events.onConnect());
    socket.on('error', (err: NodeJS.ErrnoException) => events.onError(err.code ?? err.message));
    socket.on('close', () => events.onClosed());
  }

  get queuedBytes(): number {
    return this.#socket.writableLength;
  }

  get closed(): boolean {
    return this.#socket.destroyed;
  }

  writeHead(head: string): void {
    // Queued by Node until the socket connects.
    this.#socket.write(head, 'utf8');
  }

  write(buf: Uint8Array): boolean {
    if (this.#socket.destroyed) return false;
    // Node calls back for every write, even one the kernel took at once (on a later tick), and in
    // order; a destroyed socket calls back the pending ones with an error.
    this.#socket.write(buf, this.#onWritten);
    return true;
  }

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  end(): void {
    this.#socket.end();
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #onWritten = (): void => this.#events.onWritten();
}
