// What route matching reads of a request. Small on purpose: a data path fills it from uWS without
// copying headers (getHeader on demand), and tests or `sluice --explain` fill it from plain data.

export interface RequestView {
  /** Upper-case, as GET or POST. */
  readonly method: string;
  /** The Host header as sent (any case, port included when sent); '' when absent. */
  readonly host: string;
  /** Raw path as sent, without the query: percent-escapes kept, dot segments not resolved. */
  readonly path: string;
  /** Raw query without the "?"; '' for none. */
  readonly query: string;
  /** Value of the first header with this lower-case name; '' when absent (or sent empty). */
  header(name: string): string;
}

/** A RequestView over plain data, for tests and the CLI. Header names are lower-cased. */
export function plainRequest(method: string, host: string, target: string, headers: Iterable<readonly [string, string]> = []): RequestView {
  const q = target.indexOf('?');
  const map = new Map<string, string>();
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (!map.has(lower)) map.set(lower, value);
  }
  return {
    method: method.toUpperCase(),
    host,
    path: q < 0 ? target : target.slice(0, q),
    query: q < 0 ? '' : target.slice(q + 1),
    header: (name) => map.get(name) ?? '',
  };
}
