// A backend connection on a Node socket: tls.connect for `https://` backends (wss:// on the
// backend hop), net.connect for plain backends given by name (Node resolves the name and tries
// each address family). Plain IP backends use tcp-transport.ts instead.
//
// Plain sockets read into one buffer per thread (`onread`); TLS sockets deliver 'data' events.

import net from 'node:net';
import tls from 'node:tls';
import { sharedReadBuffer } from '../net/uv.js';
import type { LegTransport, TransportEvents, TransportTarget } from './leg-transport.js';

/** The thread's shared read buffer (uv.ts): a read is parsed before the next one lands. */
const READ_BUFFER = sharedReadBuffer;

export class StreamTransport implements LegTransport {
  readonly #socket: net.Socket;
  readonly #events: TransportEvents;

  constructor(target: TransportTarget, events: TransportEvents) {
    this.#events = events;
    const socket = target.tls
      ? tls.connect({ ...target.tls, host: target.host, port: target.port })
      : net.connect({ host: target.host, port: target.port, onread: { buffer: READ_BUFFER, callback: this.#onRead } });
    this.#socket = socket;
    socket.setNoDelay(true);
    if (target.tls) socket.on('data', (chunk: Buffer) => events.onData(chunk, chunk.length));
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

  #onRead = (n: number, buf: Buffer): boolean => {
    this.#events.onData(buf, n);
    return true;
  };
}
