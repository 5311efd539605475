// Peer for side-by-side benchmarks: the `http-proxy` package on Node's http server, one process,
// upstream connections reused through a keep-alive agent (without an agent http-proxy sends
// "Connection: close" upstream and opens a new connection per request).
//
//   node bench/peers/node-http-proxy.js <listenPort> <upstream url> [<upstream url> ...]
//
// Several upstreams are used round-robin. Prints "node-http-proxy ready port=<n>" once listening.
import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const httpProxy = require('http-proxy');

const [portArg, ...targets] = process.argv.slice(2);
const port = Number(portArg);
if (!Number.isInteger(port) || port < 0 || targets.length === 0) {
  console.error('usage: node bench/peers/node-http-proxy.js <listenPort> <upstream url>...');
  process.exit(2);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });
const proxy = httpProxy.createProxyServer({ agent, xfwd: false });
proxy.on('error', (err, req, res) => {
  if (res && !res.headersSent && typeof res.writeHead === 'function') {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`bad gateway: ${err.code ?? err.message}\n`);
  } else if (res && typeof res.destroy === 'function') {
    res.destroy();
  }
});

let next = 0;
const server = http.createServer((req, res) => {
  const target = targets[next];
  next = (next + 1) % targets.length;
  proxy.web(req, res, { target });
});
server.keepAliveTimeout = 65_000;

server.listen(port, '127.0.0.1', () => {
  console.log(`node-http-proxy ready port=${server.address().port} pid=${process.pid}`);
});

const stop = () => {
  server.close();
  agent.destroy();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
