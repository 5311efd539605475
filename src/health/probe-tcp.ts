// TCP health probe: a connection that opens is a pass. It is closed at once, before any byte is
// sent, so a backend sees a connect and a close and nothing else.

import net from 'node:net';
import type { Upstream } from '../config/types.js';
import { errorCode, settleOnce, type ProbeResult } from './probe.js';

export function probeTcp(upstream: Upstream, timeoutMs: number, signal: AbortSignal): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: upstream.host, port: upstream.port });
    const finish = settleOnce(resolve, socket, timeoutMs, signal);
    socket.once('connect', () => finish(true, 'connected'));
    // `on`, not `once`: destroy() may still report a late error, which must not go unhandled.
    socket.on('error', (err) => finish(false, `connect ${errorCode(err)}`));
  });
}
