// Real loopback backends for integration tests: a node:http server whose handler the test scripts
// (it records every request and counts connections), a raw net server for byte-level responses,
// and a port that refuses connections. All are closed at the owning test's teardown.

import http from 'node:http';
import net from 'node:net';
import type { Teardown } from './sluice.js';

export interface SeenRequest {
  method: string;
  url: string;
  /** Header names and values as received: [name, value, ...] (names as the client cased them). */
  rawHeaders: string[];
  /** Lower-cased name → every value received under it. */
  headers: Map<string, string[]>;
  req: http.IncomingMessage;
  res: http.ServerResponse;
}

export interface HttpBackend {
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly server: http.Server;
  /** Every request whose head arrived, in order. */
  readonly requests: SeenRequest[];
  /** TCP connections accepted so far. */
  connections: number;
  /** Requests whose connection closed before the response finished (aborted upstream). */
  aborted: number;
  /**
   * Resolves with requests[index] once its head has arrived. Take `requests.length` before
   * sending and wait on that: no waiter can be handed another test's request.
   */
  request(index: number, timeoutMs?: number): Promise<SeenRequest>;
  close(): Promise<void>;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, seen: SeenRequest) => void;

/** The default handler: 200 with a small JSON echo of what arrived, after reading the body. */
export const echo: Handler = (req, res) => {
  let bytes = 0;
  req.on('data', (c: Buffer) => (bytes += c.length));
  req.on('end', () => {
    const body = JSON.stringify({ method: req.method, url: req.url, rawHeaders: req.rawHeaders, bytes });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
};

export async function startBackend(t: Teardown, handler: Handler = echo): Promise<HttpBackend> {
  const requests: SeenRequest[] = [];
  const arrived = new Set<() => void>();
  const server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    const headers = new Map<string, string[]>();
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!.toLowerCase();
      const list = headers.get(name);
      if (list) list.push(req.rawHeaders[i + 1]!);
      else headers.set(name, [req.rawHeaders[i + 1]!]);
    }
    const seen: SeenRequest = { method: req.method!, url: req.url!, rawHeaders: req.rawHeaders, headers, req, res };
    requests.push(seen);
    res.on('close', () => {
      if (!res.writableFinished) backend.aborted++;
    });
    for (const wake of arrived) wake();
    handler(req, res, seen);
  });
  // Node's default (headersTimeout, requestTimeout) would cut long test transfers.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.on('connection', () => backend.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  const backend: HttpBackend = {
    port,
    url: `http://127.0.0.1:${port}`,
    server,
    requests,
    connections: 0,
    aborted: 0,
    request: (index, timeoutMs = 5000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const r = requests[index];
          if (r === undefined) return;
          clearTimeout(timer);
          arrived.delete(check);
          resolve(r);
        };
        const timer = setTimeout(() => {
          arrived.delete(check);
          reject(new Error(`request #${index} did not reach the backend within ${timeoutMs} ms`));
        }, timeoutMs);
        arrived.add(check);
        check();
      }),
    close,
  };
  t.teardown(close);
  return backend;
}

export interface RawBackend {
  readonly port: number;
  readonly url: string;
  /** Bytes received, per connection, in accept order. */
  readonly received: Buffer[][];
  connections: number;
  close(): Promise<void>;
}

/**
 * A net server that hands each connection to `onConnection` (the script writes exact bytes). The
 * bytes each connection receives are recorded.
 */
export async function startRawBackend(t: Teardown, onConnection: (socket: net.Socket, index: number) => void): Promise<RawBackend> {
  const sockets = new Set<net.Socket>();
  const received: Buffer[][] = [];
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const index = received.length;
    const mine: Buffer[] = [];
    received.push(mine);
    socket.on('data', (b: Buffer) => mine.push(b));
    raw.connections++;
    onConnection(socket, index);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  const raw: RawBackend = { port, url: `http://127.0.0.1:${port}`, received, connections: 0, close };
  t.teardown(close);
  return raw;
}

/**
 * Call `respond` once per complete request head received on `socket` (a request with no body:
 * enough for scripted GET responses).
 */
export function onRequestHeads(socket: net.Socket, respond: (head: string) => void): void {
  let buffered = '';
  socket.on('data', (b: Buffer) => {
    buffered += b.toString('latin1');
    for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
      const head = buffered.slice(0, end);
      buffered = buffered.slice(end + 4);
      respond(head);
    }
  });
}

/** A loopback port with nothing listening on it (connections are refused). */
export async function refusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
