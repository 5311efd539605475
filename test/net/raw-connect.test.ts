// Connecting a raw handle to host:port (src/upstream/raw-connect.ts): the order addresses are
// tried in, falling back past an address that refuses or does not answer, the first error when
// all fail, and cancel() at each stage. Real loopback sockets; only the name's answer is given.

import t, { type Test } from 'tap';
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import type { LookupAddress } from 'node:dns';
import { attemptOrder, RawConnector, type Resolver } from '../../src/net/raw-connect.js';
import { peerAddress, type TcpHandle } from '../../src/net/uv.js';
import { refusedPort } from '../helpers/backends.js';

async function listening(t: Test, host = '127.0.0.1'): Promise<number> {
  const s = net.createServer((c) => c.on('error', () => {}).destroy());
  s.listen(0, host);
  await once(s, 'listening');
  t.teardown(() => s.close());
  return (s.address() as AddressInfo).port;
}

const answer = (addresses: LookupAddress[]): Resolver => (_host, done) => setImmediate(() => done(null, addresses));

function connectWith(host: string, port: number, resolve?: Resolver): Promise<{ handle: TcpHandle | null; error: string }> {
  return new Promise((resolveDone) => new RawConnector(host, port, (handle, error) => resolveDone({ handle, error }), resolve));
}

t.test('attemptOrder: families alternate, starting with the first answer\'s', async (t) => {
  const v4 = (a: string): LookupAddress => ({ address: a, family: 4 });
  const v6 = (a: string): LookupAddress => ({ address: a, family: 6 });
  t.strictSame(attemptOrder([]), []);
  t.strictSame(attemptOrder([v4('1.1.1.1')]), ['1.1.1.1']);
  t.strictSame(attemptOrder([v6('::1'), v6('::2'), v4('1.1.1.1'), v4('1.1.1.2')]), ['::1', '1.1.1.1', '::2', '1.1.1.2']);
  t.strictSame(attemptOrder([v4('1.1.1.1'), v6('::1'), v4('1.1.1.2'), v4('1.1.1.3')]), ['1.1.1.1', '::1', '1.1.1.2', '1.1.1.3']);
});

t.test('an IP literal connects without a lookup', async (t) => {
  const port = await listening(t);
  const lookups: string[] = [];
  const { handle, error } = await connectWith('127.0.0.1', port, (host, done) => {
    lookups.push(host);
    done(null, []);
  });
  t.equal(error, '');
  t.equal(peerAddress(handle!)!.port, port);
  t.strictSame(lookups, []);
  handle!.close();
});

t.test('a name whose first address refuses: the next one is tried', async (t) => {
  const port = await listening(t);
  // Nothing listens on ::1 at this port (the server is IPv4 only).
  const { handle, error } = await connectWith('backend.test', port, answer([{ address: '::1', family: 6 }, { address: '127.0.0.1', family: 4 }]));
  t.equal(error, '');
  t.equal(peerAddress(handle!)!.address, '127.0.0.1');
  handle!.close();
});

t.test('a name whose first address is unreachable (TEST-NET-1): the next one is tried', async (t) => {
  const port = await listening(t);
  // 192.0.2.0/24 is TEST-NET-1 (RFC 5737), never routed: the attempt fails at once or hangs until
  // the attempt timeout, depending on the host's routes; either way the next address follows.
  const { handle, error } = await connectWith('backend.test', port, answer([{ address: '192.0.2.1', family: 4 }, { address: '127.0.0.1', family: 4 }]));
  t.equal(error, '');
  t.equal(peerAddress(handle!)!.address, '127.0.0.1');
  handle!.close();
});

t.test('every address fails: the first error is reported', async (t) => {
  const port = await refusedPort();
  const { handle, error } = await connectWith('backend.test', port, answer([{ address: '127.0.0.1', family: 4 }, { address: '127.0.0.2', family: 4 }]));
  t.equal(handle, null);
  t.equal(error, 'ECONNREFUSED');
  const none = await connectWith('backend.test', port, answer([]));
  t.equal(none.error, 'ENOTFOUND');
  const failed = await connectWith('backend.test', port, (_h, done) => done(Object.assign(new Error('no'), { code: 'EAI_AGAIN' }), []));
  t.equal(failed.error, 'EAI_AGAIN');
});

t.test('cancel() while resolving or connecting: done never runs', async (t) => {
  const port = await listening(t);
  let calls = 0;
  let answerLater!: () => void;
  const resolving = new RawConnector('backend.test', port, () => calls++, (_h, done) => (answerLater = () => done(null, [{ address: '127.0.0.1', family: 4 }])));
  resolving.cancel();
  answerLater();
  const connecting = new RawConnector('127.0.0.1', port, () => calls++);
  connecting.cancel();
  // A connection started afterwards completes after the cancelled one would have.
  const later = await connectWith('127.0.0.1', port);
  later.handle!.close();
  t.equal(calls, 0);
});
