// Benchmark backend: one uWebSockets.js app answering "hello, world\n" (13 bytes, 200) on every
// method and path. Runs as its own process so it never shares an event loop with the harness.
//
//   node bench/backend.js <port> [--delay <ms>] [--count]
//
// Port 0 picks a free port. Prints one line "backend ready port=<n> pid=<pid>" once listening;
// harnesses wait for it. --delay answers each request after <ms> milliseconds (slow-backend scenarios).
// --count counts the requests answered and serves the count as JSON on GET /__count
// ({"count":n,"delayMs":d,"pid":p}); GET /__count?reset also sets it back to 0 after answering.
// /__count requests are not counted themselves. Without --count no route but the catch-all exists.
import uWS from 'uWebSockets.js';

const args = process.argv.slice(2);
const port = Number(args[0] ?? 0);
const delayAt = args.indexOf('--delay');
const delayMs = delayAt >= 0 ? Number(args[delayAt + 1]) : 0;
const counting = args.includes('--count');
if (!Number.isInteger(port) || port < 0 || port > 65535 || !(delayMs >= 0)) {
  console.error('usage: node bench/backend.js <port> [--delay <ms>] [--count]');
  process.exit(2);
}

const BODY = Buffer.from('hello, world\n');
const app = uWS.App();
let served = 0;

if (counting) {
  app.get('/__count', (res, req) => {
    const reset = /(^|&)reset(=|&|$)/.test(req.getQuery() ?? '');
    const body = JSON.stringify({ count: served, delayMs, pid: process.pid });
    if (reset) served = 0;
    res.cork(() => res.writeHeader('content-type', 'application/json').end(body));
  });
}

if (delayMs > 0) {
  app.any('/*', (res) => {
    let aborted = false;
    res.onAborted(() => { aborted = true; });
    setTimeout(() => {
      if (aborted) return;
      if (counting) served++;
      res.cork(() => res.end(BODY));
    }, delayMs);
  });
} else if (counting) {
  app.any('/*', (res) => { served++; res.end(BODY); });
} else {
  app.any('/*', (res) => { res.end(BODY); });
}

app.listen('127.0.0.1', port, (listenSocket) => {
  if (!listenSocket) {
    console.error(`backend: cannot listen on 127.0.0.1:${port}`);
    process.exit(1);
  }
  const actual = uWS.us_socket_local_port(listenSocket);
  console.log(`backend ready port=${actual} pid=${process.pid}`);
  const stop = () => {
    uWS.us_listen_socket_close(listenSocket);
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
});
