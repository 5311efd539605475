// Steady GET load on keep-alive client connections, for reload tests: each connection sends
// requests back to back and records the status and body of every answer, so a test can prove that
// nothing failed and no connection closed while it changed the configuration underneath.

import { rawConnect, type RawClient } from './raw-client.js';
import { until } from './wait.js';

export interface Outcome {
  /** Sequence number at the request's start: comparable with `load.started` taken at any moment. */
  seq: number;
  status: number;
  backend: string;
}

/**
 * `connections` keep-alive client connections, each sending GET / back to back until stop().
 * A connection that closes, or a response that does not parse, is recorded in `broken` and ends
 * that connection's loop: nothing reconnects, so the connections at the end are the ones opened
 * at the start.
 */
export async function keepAliveLoad(tt: Parameters<typeof rawConnect>[0], port: number, connections: number, target = '/', host = 'a') {
  const clients: RawClient[] = [];
  for (let i = 0; i < connections; i++) clients.push(await rawConnect(tt, port));
  const outcomes: Outcome[] = [];
  const broken: string[] = [];
  let started = 0;
  let running = true;
  const loops = clients.map(async (client, i) => {
    let offset = 0;
    while (running) {
      const seq = started++;
      try {
        await client.write(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
        const res = await client.response(offset);
        offset = res.end;
        outcomes.push({ seq, status: res.status, backend: res.body.toString() });
      } catch (err) {
        broken.push(`connection ${i}: ${(err as Error).message}`);
        return;
      }
    }
  });
  return {
    clients,
    outcomes,
    broken,
    /** Requests started so far: outcomes with seq >= this value started after this moment. */
    get started() {
      return started;
    },
    /** Wait until `n` requests that started at or after `seq` have been answered. */
    answeredSince(seq: number, n: number) {
      return until(`${n} answers after request ${seq}`, () => broken.length > 0 || outcomes.filter((o) => o.seq >= seq).length >= n);
    },
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}
