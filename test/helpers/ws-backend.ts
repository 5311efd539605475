// A real `ws` WebSocket backend on loopback (plain or TLS) for the WebSocket tests. It echoes every
// message as it came (text stays text, binary stays binary), records each handshake and what each
// connection received, and obeys a few text commands so a test can make the backend act:
//   "close:<code>:<reason>"  close with that code and reason
//   "ping:<payload>"         send a ping
//   "kill"                   destroy the TCP socket without a close frame
//   "pause"                  stop reading (a slow backend)
//   "garbage"                write a frame with a reserved opcode (a protocol violation)
//   "send:<n>"               send one binary message of n bytes
//   "flood:<count>:<size>"   send count binary messages of size bytes (as fast as ws takes them)
// GET /refuse answers the handshake with 403 and a body; a client offering "superchat" gets it
// chosen as subprotocol (else the first offered); every 101 carries "Set-Cookie: ws=1".

import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Teardown } from './sluice.js';

export interface Handshake {
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
}

export interface BackendConn {
  ws: WebSocket;
  handshake: Handshake;
  /** sha256 over every message payload received, in order. */
  hash: ReturnType<typeof createHash>;
  bytes: number;
  messages: number;
  pings: Buffer[];
  pongs: Buffer[];
  /** Set when the connection closed: the code and reason the backend saw. */
  closed: { code: number; reason: string } | null;
}

export interface WsBackend {
  readonly port: number;
  readonly url: string;
  readonly conns: BackendConn[];
  /** Handshakes seen, refused ones included. */
  readonly handshakes: Handshake[];
  close(): Promise<void>;
}

export async function startWsBackend(t: Teardown, tls?: { cert: string; key: string }): Promise<WsBackend> {
  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }) : http.createServer();
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: 512 * 1024 * 1024,
    handleProtocols: (offered) => (offered.has('superchat') ? 'superchat' : ([...offered][0] ?? false)),
  });
  wss.on('headers', (headers) => headers.push('Set-Cookie: ws=1'));
  const conns: BackendConn[] = [];
  const handshakes: Handshake[] = [];
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const hs: Handshake = { url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders };
    handshakes.push(hs);
    if (req.url!.startsWith('/refuse')) {
      const body = 'not you\n';
      socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\nx-backend: yes\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const conn: BackendConn = { ws, handshake: hs, hash: createHash('sha256'), bytes: 0, messages: 0, pings: [], pongs: [], closed: null };
      conns.push(conn);
      ws.on('ping', (d) => conn.pings.push(d));
      ws.on('pong', (d) => conn.pongs.push(d));
      ws.on('close', (code, reason) => (conn.closed = { code, reason: reason.toString() }));
      ws.on('error', () => {});
      ws.on('message', (data: Buffer, isBinary) => {
        conn.messages++;
        conn.bytes += data.length;
        conn.hash.update(data);
        if (!isBinary) {
          const text = data.toString();
          const [cmd, a, b] = text.split(':');
          if (cmd === 'close') return ws.close(Number(a), b);
          if (cmd === 'ping') return ws.ping(a);
          if (cmd === 'kill') return ws.terminate();
          if (cmd === 'pause') return ws.pause();
          if (cmd === 'garbage') return (ws as unknown as { _socket: net.Socket })._socket.write(Buffer.from([0x83, 0x00]));
          if (cmd === 'send') return ws.send(Buffer.alloc(Number(a), 7));
          if (cmd === 'flood') {
            const piece = Buffer.alloc(Number(b), 9);
            for (let i = 0; i < Number(a); i++) ws.send(piece);
            return;
          }
        }
        ws.send(data, { binary: isBinary });
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  let closed = false;
  const close = (): Promise<void> => {
    if (closed) return Promise.resolve();
    closed = true;
    for (const c of wss.clients) c.terminate();
    return new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  };
  t.teardown(close);
  return { port, url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, conns, handshakes, close };
}
