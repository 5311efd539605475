// The request as route matching reads it (src/model/request-view.ts), over uWS's HttpRequest: one
// instance per worker, refilled for each request, headers read on demand through getHeader. Valid
// only inside the uWS handler (the HttpRequest is), which is where matching runs.

import type { HttpRequest } from 'uWebSockets.js';
import type { RequestView } from '../model/request-view.js';

export class UwsRequestView implements RequestView {
  method = '';
  path = '';
  query = '';
  #req: HttpRequest | null = null;
  /** Read on first use: a table without host matchers never asks. */
  #host: string | null = null;

  fill(req: HttpRequest, method: string, path: string, query: string): this {
    this.#req = req;
    this.#host = null;
    this.method = method;
    this.path = path;
    this.query = query;
    return this;
  }

  get host(): string {
    return (this.#host ??= this.#req === null ? '' : this.#req.getHeader('host'));
  }

  header(name: string): string {
    return this.#req === null ? '' : this.#req.getHeader(name);
  }

  /** Drop the reference once the handler is done with the request. */
  clear(): void {
    this.#req = null;
    this.#host = null;
  }
}
