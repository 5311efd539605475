// TCP health probe: a connection that opens is a pass. It is closed at once, before any byte is
// sent, so a backend sees a connect and a close and nothing else.

import net from 'node:net';
import type { Upstream } from '../config/types.js';
import { errorCode, type ProbeResult } from './probe.js';

export function probeTcp(upstream: Upstream, timeoutMs: number, signal: AbortSignal): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let done = false;
    const socket = net.connect({ host: upstream.host, port: upstream.port });
    const finish = (ok: boolean, detail: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve({ ok, detail });
    };
    const onAbort = (): void => finish(false, 'aborted');
    const timer = setTimeout(() => finish(false, `timeout after ${timeoutMs} ms`), timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => finish(true, 'connected'));
    // `on`, not `once`: destroy() may still report a late error, which must not go unhandled.
    socket.on('error', (err) => finish(false, `connect ${errorCode(err)}`));
  });
}
