// Path rules shared by matching and rewriting. Paths are compared as sent (raw, percent-escapes
// kept, never normalised): "/v1/../admin" is matched as that string, not as "/admin". A literal in
// the configuration must look like what a client can send: start with "/", no query, no fragment,
// no spaces or control characters.

const FORBIDDEN = /[\u0000-\u0020\u007f?#]/;

/** Longer than any sane route path; uWS's own head limit bounds what clients can send. */
export const MAX_PATH_CHARS = 2048;

export function pathProblem(path: string): string | null {
  if (!path.startsWith('/')) return `${JSON.stringify(path)} does not start with /`;
  if (path.length > MAX_PATH_CHARS) return `a path longer than ${MAX_PATH_CHARS} characters`;
  if (FORBIDDEN.test(path)) return `${JSON.stringify(path)} contains a space, control character, ? or # (a path is matched without its query)`;
  return null;
}

/**
 * Segment-aware prefix test (Envoy's path_separated_prefix for prefixes without a trailing "/"):
 * "/v1" holds for /v1 and /v1/x, not /v10; "/v1/" holds for /v1/ and /v1/x, not /v1.
 */
export function prefixMatches(path: string, prefix: string): boolean {
  if (!path.startsWith(prefix)) return false;
  return prefix.endsWith('/') || path.length === prefix.length || path.charCodeAt(prefix.length) === SLASH;
}

export const SLASH = 0x2f;
