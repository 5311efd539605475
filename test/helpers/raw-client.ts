// A byte-level HTTP client for tests: write exact bytes on a real socket, read exactly what comes
// back, and see whether the peer closed. Also a small strict response reader for the assertions
// (status line, raw header lines in order, body by Content-Length or chunked framing).

import net from 'node:net';
import type { Teardown } from './sluice.js';

export class RawClient {
  readonly socket: net.Socket;
  #chunks: Buffer[] = [];
  #length = 0;
  #closed = false;
  #error: Error | null = null;
  #waiters = new Set<() => void>();
  readonly #opened: Promise<void>;

  /** `localAddress`: the source address (any 127.0.0.0/8 address works on Linux loopback). */
  constructor(port: number, host = '127.0.0.1', localAddress?: string) {
    const socket = net.connect({ port, host, localAddress });
    this.socket = socket;
    socket.setNoDelay(true);
    this.#opened = new Promise((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    socket.on('data', (b: Buffer) => {
      this.#chunks.push(b);
      this.#length += b.length;
      this.#wake();
    });
    socket.on('error', (err) => {
      this.#error = err;
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
  }

  /** Connected (rejects on ECONNREFUSED and the like). */
  opened(): Promise<void> {
    return this.#opened;
  }

  get closed(): boolean {
    return this.#closed;
  }
  get error(): Error | null {
    return this.#error;
  }

  /** Everything received so far. */
  received(): Buffer {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0] ?? Buffer.alloc(0);
  }
  text(): string {
    return this.received().toString('latin1');
  }
  get receivedBytes(): number {
    return this.#length;
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Resolves when `done(received text)` holds, or with false when the socket closes or time runs out. */
  waitFor(done: (text: string) => boolean, timeoutMs = 5000): Promise<boolean> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (done(this.text())) return finish(true);
        if (this.#closed) return finish(false);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      const finish = (value: boolean): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(value);
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Resolves true when the peer has closed the connection within `timeoutMs`. */
  waitClosed(timeoutMs = 5000): Promise<boolean> {
    return this.waitFor(() => false, timeoutMs).then(() => this.#closed);
  }

  /** Wait for one complete response (see readResponse) starting at byte `from`. */
  async response(from = 0, opts: { noBody?: boolean; timeoutMs?: number } = {}): Promise<RawResponse> {
    let parsed: RawResponse | null = null;
    await this.waitFor((text) => (parsed = readResponse(text, from, opts.noBody ?? false)) !== null, opts.timeoutMs ?? 5000);
    if (parsed === null) {
      throw new Error(`no complete response (closed: ${this.#closed}); received ${JSON.stringify(this.text().slice(from, from + 400))}`);
    }
    return parsed;
  }

  destroy(): void {
    this.socket.destroy();
  }

  #wake(): void {
    for (const w of this.#waiters) w();
  }
}

/** Open a raw connection that is destroyed at `t`'s teardown. */
export async function rawConnect(t: Teardown, port: number, localAddress?: string): Promise<RawClient> {
  const client = new RawClient(port, '127.0.0.1', localAddress);
  t.teardown(() => client.destroy());
  await client.opened();
  return client;
}

export interface RawResponse {
  status: number;
  reason: string;
  /** [name, value] in the order received, names as sent. */
  headers: [string, string][];
  body: Buffer;
  /** Offset in the received text just after this response. */
  end: number;
  /** Every value of a header (case-insensitive name). */
  all(name: string): string[];
  get(name: string): string | undefined;
}

/**
 * Parse one response at `from` in latin1 `text`; null when incomplete. Framing: no body for
 * `noBody` (a HEAD), 1xx, 204 and 304; else chunked, Content-Length, or (neither) read-to-close is
 * not supported here and yields an empty body.
 */
export function readResponse(text: string, from: number, noBody: boolean): RawResponse | null {
  const headEnd = text.indexOf('\r\n\r\n', from);
  if (headEnd < 0) return null;
  const lines = text.slice(from, headEnd).split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]!);
  if (!m) throw new Error(`bad status line ${JSON.stringify(lines[0])}`);
  const status = Number(m[1]);
  const headers: [string, string][] = lines.slice(1).map((line) => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon), line.slice(colon + 1).trim()];
  });
  const all = (name: string): string[] => headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
  const base = { status, reason: m[2] ?? '', headers, all, get: (name: string) => all(name)[0] };
  let pos = headEnd + 4;
  if (noBody || status < 200 || status === 204 || status === 304) return { ...base, body: Buffer.alloc(0), end: pos };
  if (all('transfer-encoding').some((v) => v.toLowerCase().includes('chunked'))) {
    const pieces: string[] = [];
    for (;;) {
      const eol = text.indexOf('\r\n', pos);
      if (eol < 0) return null;
      const size = parseInt(text.slice(pos, eol), 16);
      if (Number.isNaN(size)) throw new Error(`bad chunk size ${JSON.stringify(text.slice(pos, eol))}`);
      if (size === 0) {
        const end = text.indexOf('\r\n\r\n', eol);
        if (end < 0) return null;
        return { ...base, body: Buffer.from(pieces.join(''), 'latin1'), end: end + 4 };
      }
      if (text.length < eol + 2 + size + 2) return null;
      pieces.push(text.slice(eol + 2, eol + 2 + size));
      pos = eol + 2 + size + 2;
    }
  }
  const length = Number(all('content-length')[0] ?? 0);
  if (text.length < pos + length) return null;
  return { ...base, body: Buffer.from(text.slice(pos, pos + length), 'latin1'), end: pos + length };
}

/** A small GET head for raw writes. */
export function get(path = '/', extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: test.local\r\n${extra}\r\n`;
}
