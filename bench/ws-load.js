// WebSocket load generator (a child process of bench/websocket.js, or run by hand), on `ws`.
//
//   node bench/ws-load.js echo <ws-url> <clients> <in-flight> <size> <seconds> [<warm-up seconds>]
//     N clients, each keeping M messages of <size> bytes in flight against an echo server; prints
//     one JSON line {"messages","seconds","rate","p50Ms","p99Ms","errors"}. Latency is per message,
//     send to echo, from a time stamp carried in the payload.
//   node bench/ws-load.js idle <ws-url> <count>
//     opens <count> WebSockets (64 handshakes at a time), prints "idle ready <n>" and holds them
//     until SIGTERM.
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

const [mode, url, ...rest] = process.argv.slice(2);

function connect() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

async function echo(clients, inFlight, size, seconds, warmupS) {
  const sockets = [];
  for (let i = 0; i < clients; i++) sockets.push(await connect());
  // Latency samples: one per echoed message, up to 4M (sampled evenly beyond that).
  const samples = new Float64Array(4 * 1024 * 1024);
  let count = 0;
  let errors = 0;
  let measuring = false;
  let stop = false;
  let measured = 0;
  const start = () => {
    for (const ws of sockets) {
      ws.on('error', () => errors++);
      ws.on('message', (data) => {
        if (measuring) {
          const ms = performance.now() - data.readDoubleLE(0);
          samples[count++ % samples.length] = ms;
          measured++;
        }
        if (!stop) send(ws);
      });
      for (let j = 0; j < inFlight; j++) send(ws);
    }
  };
  const payload = Buffer.alloc(Math.max(size, 8), 0x61);
  function send(ws) {
    payload.writeDoubleLE(performance.now(), 0);
    ws.send(payload, { binary: true });
  }
  start();
  // Unmeasured warm-up, then the measured window.
  await new Promise((r) => setTimeout(r, warmupS * 1000));
  measuring = true;
  // The harness samples CPU times between this line and the result line.
  console.log('measuring');
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  stop = true;
  const n = Math.min(count, samples.length);
  const sorted = samples.subarray(0, n).sort();
  const pct = (p) => (n === 0 ? null : sorted[Math.min(n - 1, Math.floor(p * n))]);
  for (const ws of sockets) ws.terminate();
  console.log(JSON.stringify({ messages: measured, seconds: elapsed, rate: measured / elapsed, p50Ms: pct(0.5), p99Ms: pct(0.99), errors }));
}

async function idle(total) {
  const held = [];
  let failed = 0;
  for (let i = 0; i < total; i += 64) {
    const batch = [];
    for (let j = i; j < Math.min(total, i + 64); j++) batch.push(connect().then((ws) => held.push(ws), () => failed++));
    await Promise.all(batch);
  }
  console.log(`idle ready ${held.length} failed=${failed}`);
  process.on('SIGTERM', () => {
    for (const ws of held) ws.terminate();
    process.exit(0);
  });
  setInterval(() => {}, 1 << 30);
}

if (mode === 'echo') {
  const [clients, inFlight, size, seconds, warmupS = 1] = rest.map(Number);
  await echo(clients, inFlight, size, seconds, warmupS);
  process.exit(0);
} else if (mode === 'idle') {
  await idle(Number(rest[0]));
} else {
  console.error('usage: node bench/ws-load.js echo <url> <clients> <in-flight> <size> <seconds> | idle <url> <count>');
  process.exit(2);
}
