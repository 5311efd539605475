// Benchmark backend: one uWebSockets.js app answering "hello, world\n" (13 bytes, 200) on every
// method and path. Runs as its own process so it never shares an event loop with the harness.
//
//   node bench/backend.js <port> [--delay <ms>]
//
// Port 0 picks a free port. Prints one line "backend ready port=<n> pid=<pid>" once listening;
// harnesses wait for it. --delay answers each request after <ms> milliseconds (slow-backend scenarios).
import uWS from 'uWebSockets.js';

const args = process.argv.slice(2);
const port = Number(args[0] ?? 0);
const delayAt = args.indexOf('--delay');
const delayMs = delayAt >= 0 ? Number(args[delayAt + 1]) : 0;
if (!Number.isInteger(port) || port < 0 || port > 65535 || !(delayMs >= 0)) {
  console.error('usage: node bench/backend.js <port> [--delay <ms>]');
  process.exit(2);
}

const BODY = Buffer.from('hello, world\n');
const app = uWS.App();

if (delayMs > 0) {
  app.any('/*', (res) => {
    let aborted = false;
    res.onAborted(() => { aborted = true; });
    setTimeout(() => {
      if (aborted) return;
      res.cork(() => res.end(BODY));
    }, delayMs);
  });
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
