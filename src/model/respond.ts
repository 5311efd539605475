// Fixed responses (maintenance pages, robots.txt, health answers): status, headers and body, all
// checked and built at load. A body without a content-type header gets text/plain; statuses that
// carry no body (204, 304) may not declare one; HEAD requests get the head only (the data path's
// job, as for any response).

import { headerNameProblem, headerValueProblem } from './header-ops.js';
import { statusLine } from './redirect.js';
import type { HeaderPair, RespondSpec } from './route.js';

export interface CompiledRespond {
  readonly status: number;
  /** For uWS writeStatus: "503 Service Unavailable". */
  readonly statusLine: string;
  /** Lower-case names; content-type included when there is a body. */
  readonly headers: readonly HeaderPair[];
  readonly body: string;
}

/** A fixed response is configuration, not content hosting. */
export const MAX_RESPOND_BODY_CHARS = 65_536;
const DEFAULT_TYPE = 'text/plain; charset=utf-8';

export function respondProblems(spec: RespondSpec): string[] {
  const problems: string[] = [];
  if (!Number.isInteger(spec.status) || spec.status < 200 || spec.status > 599) {
    problems.push(`status: ${spec.status} is not a status from 200 to 599`);
  }
  const body = spec.body ?? '';
  if (body !== '' && (spec.status === 204 || spec.status === 304)) problems.push(`body: a ${spec.status} response has no body`);
  if (body.length > MAX_RESPOND_BODY_CHARS) problems.push(`body: longer than ${MAX_RESPOND_BODY_CHARS} characters`);
  for (const { name, value } of spec.headers ?? []) {
    const p = headerNameProblem(name, 'response') ?? headerValueProblem(value);
    if (p !== null) problems.push(`headers.${name}: ${p}`);
  }
  return problems;
}

export class RespondError extends Error {
  override readonly name = 'RespondError';
}

/** Throws RespondError when respondProblems finds any. */
export function compileRespond(spec: RespondSpec): CompiledRespond {
  const problems = respondProblems(spec);
  if (problems.length > 0) throw new RespondError(problems.join('; '));
  const body = spec.body ?? '';
  const headers = (spec.headers ?? []).map((h) => ({ name: h.name.toLowerCase(), value: h.value }));
  if (body !== '' && !headers.some((h) => h.name === 'content-type')) headers.push({ name: 'content-type', value: DEFAULT_TYPE });
  return { status: spec.status, statusLine: statusLine(spec.status), headers, body };
}
