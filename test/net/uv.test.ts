// The libuv handle contract src/net/uv.ts relies on, pinned on the Node in use with real loopback
// sockets: user-buffer reads, synchronous and queued writes, FIN, reset, refused connects.
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import t from 'tap';
import { refusedPort } from '../helpers/backends.js';
import { connect, errorName, heldWrite, lastWriteWasAsync, listen, localAddress, newSocket, peerAddress, readResult, ShutdownWrap, UV_EOF, WriteWrap, writeReq, type TcpHandle } from '../../src/net/uv.js';

const closeHandle = (h: TcpHandle) => new Promise<void>((resolve) => h.close(resolve));

t.test('listen, accept, read into a user buffer, write back, FIN both ways', async (t) => {
  const buf = Buffer.alloc(1024);
  let onAccept!: (h: TcpHandle) => void;
  const accepted = new Promise<TcpHandle>((resolve) => (onAccept = resolve));
  const server = listen('127.0.0.1', 0, 16, (h) => onAccept(h));
  t.teardown(() => server.close());
  const client = net.connect(localAddress(server)!.port!, '127.0.0.1', () => client.write('hello'));
  const got: Buffer[] = [];
  client.on('data', (d) => got.push(d));
  t.teardown(() => client.destroy());
  const h = await accepted;
  t.equal(peerAddress(h)!.address, '127.0.0.1');
  t.equal(peerAddress(h)!.port, client.localPort);
  const events: string[] = [];
  const ended = new Promise<void>((resolve) => {
    h.onread = () => {
      const n = readResult();
      if (n > 0) {
        events.push(buf.subarray(0, n).toString());
        const req = new WriteWrap();
        req.handle = h;
        req.oncomplete = () => t.fail('a small write completes at once');
        const err = h.writeBuffer(req, Buffer.from(buf.subarray(0, n)));
        const queued = lastWriteWasAsync();
        t.equal(err, 0);
        t.notOk(queued);
        client.end();
      } else if (n === UV_EOF) resolve();
      return undefined;
    };
  });
  h.useUserBuffer(buf);
  t.equal(h.readStart(), 0);
  await ended;
  t.same(events, ['hello']);
  const closed = new Promise((r) => client.once('close', r));
  const req = new ShutdownWrap();
  req.handle = h;
  const shut = new Promise<number>((resolve) => (req.oncomplete = (status) => resolve(status)));
  t.equal(h.shutdown(req), 0);
  t.equal(await shut, 0);
  await closed;
  t.equal(Buffer.concat(got).toString(), 'hello');
  await closeHandle(h);
});

t.test('a write the kernel cannot take at once is queued and completed later, bytes intact', async (t) => {
  let peer!: net.Socket;
  const server = net.createServer({ pauseOnConnect: true }, (s) => (peer = s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const h = newSocket();
  const status = await new Promise<number>((resolve) => connect(h, '127.0.0.1', (server.address() as net.AddressInfo).port, resolve));
  t.equal(status, 0);
  const big = Buffer.alloc(32 << 20, 7);
  big.write('end', big.length - 3);
  // A small write first: the kernel takes it, and the shared request stays the next write's.
  const first = writeReq();
  const small = heldWrite(h.writeBuffer(first, Buffer.from('abc')));
  t.equal(small, null);
  t.ok(writeReq() === first, 'a request no write kept serves the next write');
  big.write('abc', 0);
  // Read before anything else writes to any stream: the state is one array for every handle.
  const err = h.writeBuffer(writeReq(), big.subarray(3));
  const queued = lastWriteWasAsync();
  const req = heldWrite(err)!;
  t.equal(err, 0);
  t.ok(queued, '32 MiB to a paused reader cannot go at once');
  t.ok(req === first, 'the request libuv kept is handed over');
  t.ok(writeReq() !== first, 'and a fresh one serves the next write');
  const done = new Promise<number>((resolve) => (req.oncomplete = (s) => resolve(s)));
  t.ok(h.writeQueueSize > 0);
  let n = 0;
  let tail = '';
  peer.on('data', (d) => {
    n += d.length;
    tail = (tail + d.toString('latin1')).slice(-3);
  });
  peer.resume();
  t.equal(await done, 0);
  await new Promise<void>((r) => (n >= big.length ? r() : peer.on('data', () => n >= big.length && r())));
  t.equal(n, big.length);
  t.equal(tail, 'end');
  t.equal(h.writeQueueSize, 0);
  peer.destroy();
  await closeHandle(h);
});

t.test('a refused connect completes with ECONNREFUSED; a peer reset reads as an error', async (t) => {
  const h = newSocket();
  const status = await new Promise<number>((resolve) => connect(h, '127.0.0.1', 1, resolve));
  t.equal(errorName(status), 'ECONNREFUSED');
  await closeHandle(h);

  // Reset once the client has written: a reset before the handshake completes fails the connect.
  const server = net.createServer((s) => s.once('data', () => s.resetAndDestroy()));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const h2 = newSocket();
  t.equal(await new Promise<number>((resolve) => connect(h2, '127.0.0.1', (server.address() as net.AddressInfo).port, resolve)), 0);
  const buf = Buffer.alloc(64);
  const w = new WriteWrap();
  w.handle = h2;
  h2.writeLatin1String(w, 'x');
  const err = await new Promise<number>((resolve) => {
    h2.onread = () => {
      resolve(readResult());
      return undefined;
    };
    h2.useUserBuffer(buf);
    h2.readStart();
  });
  t.equal(errorName(err), 'ECONNRESET');
  await closeHandle(h2);
});

t.test('an accepted socket has TCP_NODELAY from its listener (Linux copies it; the L4 accept path relies on it)', async (t) => {
  // Node has no getsockopt: the accepted descriptor is handed to python3 as its stdin, which asks.
  const probe = "import socket; s = socket.socket(fileno=0); print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)); s.detach()";
  const python = spawnSync('python3', ['-c', 'print(1)'], { encoding: 'utf8' });
  if (python.status !== 0) {
    t.plan(0, 'skipped: python3 is not installed');
    return;
  }
  let onAccept!: (h: TcpHandle) => void;
  const accepted = new Promise<TcpHandle>((resolve) => (onAccept = resolve));
  const server = listen('127.0.0.1', 0, 16, (h) => onAccept(h));
  t.teardown(() => server.close());
  const client = net.connect(localAddress(server)!.port!, '127.0.0.1');
  t.teardown(() => client.destroy());
  const h = await accepted;
  const asked = spawnSync('python3', ['-c', probe], { stdio: [h.fd, 'pipe', 'pipe'], encoding: 'utf8' });
  t.equal(asked.stderr, '');
  t.not(asked.stdout.trim(), '0', 'TCP_NODELAY is on');
  await closeHandle(h);
});

t.test('listen errors are thrown by name', async (t) => {
  const port = await refusedPort();
  const a = listen('127.0.0.1', port, 8, () => {});
  t.teardown(() => a.close());
  t.throws(() => listen('127.0.0.1', port, 8, () => {}), { code: 'EADDRINUSE' });
  t.throws(() => listen('not-an-ip', 0, 8, () => {}), { code: 'EINVAL' });
  const v6 = listen('::1', 0, 8, () => {});
  t.equal(localAddress(v6)!.family, 'IPv6');
  v6.close();
  t.equal(peerAddress(a), null, 'a listening socket has no peer');
});

t.test('a reset closes with RST', async (t) => {
  let peerErr: NodeJS.ErrnoException | null = null;
  const closed = new Promise<void>((resolve) => {
    const server = net.createServer((s) => {
      s.on('error', (e) => (peerErr = e));
      s.on('close', () => resolve());
    });
    server.listen(0, '127.0.0.1', () => {
      const h = newSocket();
      connect(h, '127.0.0.1', (server.address() as net.AddressInfo).port, () => setTimeout(() => h.reset(), 20));
    });
    t.teardown(() => server.close());
  });
  await closed;
  t.equal(peerErr!.code, 'ECONNRESET');
});
