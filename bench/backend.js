// Benchmark backend: one uWebSockets.js app answering "hello, world\n" (13 bytes, 200) on every
// method and path. Runs as its own process so it never shares an event loop with the harness.
//
//   node bench/backend.js <port> [--delay <ms>] [--count] [--window <for>/<every>@<epoch>] [--window-delay <ms>]
//
// Port 0 picks a free port. Prints one line "backend ready port=<n> pid=<pid>" once listening;
// harnesses wait for it. --delay answers each request after <ms> milliseconds (slow-backend scenarios).
// --count counts the requests answered and serves the count as JSON on GET /__count
// ({"count":n,"delayMs":d,"pid":p}); GET /__count?reset also sets it back to 0 after answering.
// /__count requests are not counted themselves. Without --count no route but the catch-all exists.
// --window <for>/<every>@<epoch> (ms, ms, unix ms) marks the first <for> ms of every <every> ms since
// <epoch> as "in window": /__count then also reports "inWindow", the requests answered inside one, and
// --window-delay <ms> delays only those (a part-time-slow backend). Backends given the same window
// count the same wall-clock intervals, so a harness can compare shares inside and outside them.
import uWS from 'uWebSockets.js';

const args = process.argv.slice(2);
const port = Number(args[0] ?? 0);
const delayAt = args.indexOf('--delay');
const delayMs = delayAt >= 0 ? Number(args[delayAt + 1]) : 0;
const counting = args.includes('--count');
const windowAt = args.indexOf('--window');
const windowSpec = windowAt >= 0 ? /^(\d+)\/(\d+)@(\d+)$/.exec(args[windowAt + 1] ?? '') : null;
const windowDelayAt = args.indexOf('--window-delay');
const windowDelayMs = windowDelayAt >= 0 ? Number(args[windowDelayAt + 1]) : 0;
if (!Number.isInteger(port) || port < 0 || port > 65535 || !(delayMs >= 0) || !(windowDelayMs >= 0) || (windowAt >= 0 && !windowSpec)) {
  console.error('usage: node bench/backend.js <port> [--delay <ms>] [--count] [--window <for>/<every>@<epoch>] [--window-delay <ms>]');
  process.exit(2);
}
const [windowFor, windowEvery, windowEpoch] = windowSpec ? windowSpec.slice(1).map(Number) : [0, 1, 0];
/** Whether now falls inside a window (always false without --window). */
const inWindow = () => windowSpec !== null && (Date.now() - windowEpoch) % windowEvery < windowFor;

const BODY = Buffer.from('hello, world\n');
const app = uWS.App();
let served = 0;
let servedInWindow = 0;

if (counting) {
  app.get('/__count', (res, req) => {
    const reset = /(^|&)reset(=|&|$)/.test(req.getQuery() ?? '');
    const body = JSON.stringify({ count: served, inWindow: servedInWindow, delayMs, pid: process.pid });
    if (reset) {
      served = 0;
      servedInWindow = 0;
    }
    res.cork(() => res.writeHeader('content-type', 'application/json').end(body));
  });
}

if (windowSpec) {
  // Windowed: the phase is judged when the request arrives, and counted when it is answered.
  const answer = (res, state, windowed) => {
    if (state.aborted) return;
    if (counting) {
      served++;
      if (windowed) servedInWindow++;
    }
    res.cork(() => res.end(BODY));
  };
  app.any('/*', (res) => {
    const windowed = inWindow();
    const wait = delayMs + (windowed ? windowDelayMs : 0);
    if (wait === 0) return answer(res, { aborted: false }, windowed);
    const state = { aborted: false };
    res.onAborted(() => { state.aborted = true; });
    setTimeout(() => answer(res, state, windowed), wait);
  });
} else if (delayMs > 0) {
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
