// Access log (SLUICE_ACCESS_LOG=off|on|<sample rate>): one JSON line per request, from each worker.
//
// pino over an asynchronous SonicBoom on stdout: the request path only builds one small object and
// appends a line to a buffer; the write happens later, in chunks. Chunks are kept under PIPE_BUF
// (4096 bytes) where possible so lines from different workers sharing one stdout pipe do not
// interleave. Off is a null logger and costs nothing per request (the caller checks for null).

import pino, { type Logger } from 'pino';

/** Buffer this much before writing; kept below PIPE_BUF so one write stays atomic on a pipe. */
const FLUSH_BYTES = 3072;

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
  readonly #logger: Logger;
  readonly #rate: number;

  constructor(rate: number, worker: number) {
    this.#rate = rate;
    const dest = pino.destination({ dest: 1, sync: false, minLength: FLUSH_BYTES });
    this.#logger = pino({ base: { type: 'access', worker }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
    // Buffered lines must not be lost when the worker ends (drain or crash path).
    process.once('exit', () => dest.flushSync());
  }

  /** Whether this request is sampled (rate 1 logs every request). */
  sampled(): boolean {
    return this.#rate >= 1 || Math.random() < this.#rate;
  }

  write(record: AccessRecord): void {
    this.#logger.info(record);
  }
}

/** An access log for the configured rate, or null when off. */
export function accessLog(rate: number, worker: number): AccessLog | null {
  return rate > 0 ? new AccessLog(rate, worker) : null;
}
