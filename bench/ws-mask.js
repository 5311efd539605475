// Cost of masking a frame toward a backend (src/ws/frame-writer.ts) against a plain copy of the
// same payload, the floor a zero masking key would reach. One process, no sockets: run it quiet.
//
//   node bench/ws-mask.js        (after npm run build)
import { frameSize, writeFrame } from '../dist/src/ws/frame-writer.js';

for (const n of [16, 64, 256, 1024, 64 * 1024, 1024 * 1024]) {
  const payload = new Uint8Array(n).fill(7);
  // A scratch-sized buffer of its own, as write-batch.ts hands out (frames over 16 KiB get their own).
  const dst = Buffer.allocUnsafeSlow(Math.max(16 * 1024, frameSize(n)));
  const turns = Math.max(50, Math.floor(2e8 / (n + 64)));
  let masked = 0;
  let copied = 0;
  // Three passes; the last one counts (the first ones let V8 optimise both loops).
  for (let pass = 0; pass < 3; pass++) {
    let t = process.hrtime.bigint();
    for (let i = 0; i < turns; i++) writeFrame(dst, 0, 2, -1, payload);
    masked = Number(process.hrtime.bigint() - t) / turns;
    t = process.hrtime.bigint();
    for (let i = 0; i < turns; i++) dst.set(payload, 14);
    copied = Number(process.hrtime.bigint() - t) / turns;
  }
  console.log(`${String(n).padStart(8)} B: masked frame ${masked.toFixed(0).padStart(8)} ns, copy alone ${copied.toFixed(0).padStart(7)} ns`);
}
