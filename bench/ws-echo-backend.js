// WebSocket benchmark backend: one uWebSockets.js app echoing every message (text stays text,
// binary stays binary) and answering plain GETs with 200 "hello, world\n" (so harnesses can wait
// for readiness with an HTTP GET). Runs as its own process.
//
//   node bench/ws-echo-backend.js <port>
//
// Port 0 picks a free port. Prints "ws backend ready port=<n> pid=<pid>" once listening.
import uWS from 'uWebSockets.js';

const port = Number(process.argv[2] ?? 0);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('usage: node bench/ws-echo-backend.js <port>');
  process.exit(2);
}

const BODY = Buffer.from('hello, world\n');
uWS.App()
  .ws('/*', {
    maxPayloadLength: 16 * 1024 * 1024,
    maxBackpressure: 64 * 1024 * 1024,
    idleTimeout: 0,
    message: (ws, message, isBinary) => {
      ws.send(message, isBinary);
    },
  })
  .any('/*', (res) => {
    res.end(BODY);
  })
  .listen('127.0.0.1', port, (socket) => {
    if (!socket) {
      console.error(`cannot listen on 127.0.0.1:${port}`);
      process.exit(1);
    }
    console.log(`ws backend ready port=${uWS.us_socket_local_port(socket)} pid=${process.pid}`);
  });
