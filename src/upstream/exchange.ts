// The contract between an upstream connection and whoever is using it for one request: undici's
// handler shape (a plain object with callbacks, no streams, no promises on the hot path).

import type { FramingKind } from './response-parser.js';
import type { UpstreamError } from './errors.js';
import type { Connection } from './connection.js';

export interface ExchangeHandler {
  /** A connection from the pool is ready for this exchange (it may still be connecting). */
  onConnection(conn: Connection): void;
  /** The pool is at its limit and its wait queue is full. */
  onPoolFull(): void;
  /**
   * Final response head. Header names are lower-case: [name, value, ...]; values are latin1 (one
   * character per octet), and `octets` says some value or the reason has one over 0x7F.
   */
  onResponseStart(status: number, reason: string, headers: string[], framing: FramingKind, contentLength: number, octets: boolean): void;
  /** A decoded body piece (a view of the socket's buffer). Return false to pause the upstream. */
  onResponseData(chunk: Buffer): boolean;
  onResponseEnd(): void;
  onResponseError(err: UpstreamError): void;
  /**
   * This request was pipelined behind another and will not be answered on that connection (it
   * closed, or the response ahead kept it waiting past the bound): send it again, on another
   * connection. Not a failure of the backend's, and no retry budget: it was never answered.
   */
  onRequeue(): void;
  /** The upstream socket's write buffer drained: more request body may be sent. */
  onRequestDrain(): void;
  /** Run `fn` with the client's output corked (one syscall for head and body). */
  cork(fn: () => void): void;
  /** Set when the exchange no longer wants a connection (client gone while queued). */
  readonly cancelled: boolean;
  /**
   * Requests its pool lets one backend connection carry at once when this one may be pipelined
   * (a bodiless GET or HEAD on a pool with `pipeline` > 1); absent or 1 = never pipelined.
   */
  readonly pipelineDepth?: number;
}
