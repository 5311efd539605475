// Access log (SLUICE_ACCESS_LOG=off|on|<sample rate>): one JSON line per request, from each worker,
// in the same shape as the pino process logs (level 30, epoch-ms time) so one pipeline reads both.
//
// The request path only appends one line to a string: the line is built by hand from known
// fields (a generic serializer walking an object cost ~30% of throughput in bench/access-log.js),
// escaping only the two client-controlled strings. Writing happens off the request path: when the
// buffer passes a flush size, or on a coarse timer, with asynchronous fs.write on stdout. Writes are
// kept under PIPE_BUF where possible so lines from several workers on one pipe do not interleave.
// If stdout stops draining, lines beyond MAX_BUFFERED are dropped and counted, never buffered
// without bound. Off is a null logger and costs nothing per request.

import fs from 'node:fs';

/** Buffer this much before writing to a pipe or socket: below PIPE_BUF (4096), so atomic. */
const FLUSH_BYTES_PIPE = 3072;
/** To a file (or /dev/null) every write is atomic: bigger writes, fewer syscalls. */
const FLUSH_BYTES_FILE = 64 * 1024;
/** Lines waiting longer than this are written anyway (a quiet worker still logs promptly). */
const FLUSH_MS = 100;
/** Past this much unwritten text (stdout blocked), new lines are dropped and counted. */
const MAX_BUFFERED = 4 * 1024 * 1024;

export interface AccessRecord {
  requestId: string;
  traceId: string;
  client: string;
  method: string;
  path: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
  backend: string;
  upstreamMs: number;
  totalMs: number;
  retries: number;
}

export class AccessLog {
  readonly #rate: number;
  readonly #prefix: string;
  readonly #fd: number;
  readonly #flushBytes: number;
  #buf = '';
  #writing = false;
  #timer: NodeJS.Timeout | null = null;
  #dropped = 0;
  readonly #flush = (): void => {
    this.#timer = null;
    this.#write();
  };

  constructor(rate: number, worker: number, fd = 1) {
    this.#rate = rate;
    this.#fd = fd;
    let pipe = true;
    try {
      const st = fs.fstatSync(fd);
      pipe = st.isFIFO() || st.isSocket();
    } catch {
      // unknown: assume the cautious case
    }
    this.#flushBytes = pipe ? FLUSH_BYTES_PIPE : FLUSH_BYTES_FILE;
    this.#prefix = '{"level":30,"type":"access","pid":' + process.pid + ',"worker":' + worker + ',"time":';
    // Whatever is buffered must not be lost when the worker ends (drain or crash).
    process.once('exit', () => this.flushSync());
  }

  /** Whether this request is sampled (rate 1 logs every request). */
  sampled(): boolean {
    return this.#rate >= 1 || Math.random() < this.#rate;
  }

  write(r: AccessRecord): void {
    if (this.#buf.length > MAX_BUFFERED) {
      this.#dropped++;
      return;
    }
    this.#buf +=
      this.#prefix +
      Date.now() +
      ',"requestId":' +
      JSON.stringify(r.requestId) +
      ',"traceId":"' +
      r.traceId +
      '","client":"' +
      r.client +
      '","method":"' +
      r.method +
      '","path":' +
      JSON.stringify(r.path) +
      ',"status":' +
      r.status +
      ',"bytesIn":' +
      r.bytesIn +
      ',"bytesOut":' +
      r.bytesOut +
      ',"backend":"' +
      r.backend +
      '","upstreamMs":' +
      r.upstreamMs +
      ',"totalMs":' +
      r.totalMs +
      ',"retries":' +
      r.retries +
      ',"msg":"access"}\n';
    if (this.#buf.length >= this.#flushBytes) this.#write();
    else if (this.#timer === null) {
      this.#timer = setTimeout(this.#flush, FLUSH_MS);
      this.#timer.unref();
    }
  }

  /** Lines dropped because stdout was not draining. */
  get dropped(): number {
    return this.#dropped;
  }

  flushSync(): void {
    if (this.#writing || this.#buf === '') return;
    try {
      fs.writeSync(this.#fd, this.#buf);
    } catch {
      // stdout gone at exit: nothing left to tell
    }
    this.#buf = '';
  }

  #write(): void {
    if (this.#writing || this.#buf === '') return;
    if (this.#dropped > 0) {
      this.#buf += '{"level":40,"type":"access","time":' + Date.now() + ',"dropped":' + this.#dropped + ',"msg":"access log lines dropped: stdout is not draining"}\n';
      this.#dropped = 0;
    }
    const chunk = Buffer.from(this.#buf);
    this.#buf = '';
    this.#writing = true;
    this.#send(chunk, 0);
  }

  #send(chunk: Buffer, offset: number): void {
    fs.write(this.#fd, chunk, offset, chunk.length - offset, null, (err, written) => {
      if (err) {
        if (err.code === 'EAGAIN') {
          // A non-blocking pipe that is full: try again shortly.
          setTimeout(() => this.#send(chunk, offset), 10).unref();
          return;
        }
        this.#writing = false;
        return;
      }
      if (offset + written < chunk.length) return this.#send(chunk, offset + written);
      this.#writing = false;
      if (this.#buf.length >= this.#flushBytes) this.#write();
      else if (this.#buf !== '' && this.#timer === null) {
        this.#timer = setTimeout(this.#flush, FLUSH_MS);
        this.#timer.unref();
      }
    });
  }
}

/** An access log for the configured rate, or null when off. */
export function accessLog(rate: number, worker: number): AccessLog | null {
  return rate > 0 ? new AccessLog(rate, worker) : null;
}
