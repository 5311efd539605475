// Typed upstream failures. Each kind maps to one client status and one metric label, so the same
// name appears in logs, metrics and the `x-sluice-error` response header.

export type UpstreamErrorKind = 'connect' | 'timeout' | 'reset' | 'protocol' | 'unavailable' | 'overloaded';

export class UpstreamError extends Error {
  readonly kind: UpstreamErrorKind;
  /** HTTP status the client gets when this ends the request before any response byte. */
  readonly status: number;
  /** True when no byte of the response arrived, so an idempotent request may be tried again. */
  readonly beforeResponse: boolean;

  constructor(kind: UpstreamErrorKind, message: string, beforeResponse: boolean) {
    super(message);
    this.name = 'UpstreamError';
    this.kind = kind;
    this.status = STATUS[kind];
    this.beforeResponse = beforeResponse;
  }
}

const STATUS: Record<UpstreamErrorKind, number> = {
  connect: 502,
  timeout: 504,
  reset: 502,
  protocol: 502,
  unavailable: 503,
  overloaded: 503,
};

/** Status line text for the statuses Sluice generates itself. */
export const REASONS: Record<number, string> = {
  400: '400 Bad Request',
  404: '404 Not Found',
  413: '413 Content Too Large',
  500: '500 Internal Server Error',
  431: '431 Request Header Fields Too Large',
  501: '501 Not Implemented',
  502: '502 Bad Gateway',
  503: '503 Service Unavailable',
  504: '504 Gateway Timeout',
};
