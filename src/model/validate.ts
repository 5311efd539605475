// Every problem of one route that can be seen without the rest of the configuration (pool names
// are checked by the config loader, shadowing by shadow.ts). Messages start with the file key they
// are about ("match.path_regex: ..."), so the loader only has to say which file and which route.

import { headerOpsProblems } from './header-ops.js';
import { hostPatternProblem } from './host.js';
import { headerMatchProblem, methodProblem, queryMatchProblem } from './matchers.js';
import { pathProblem } from './path.js';
import { redirectProblems } from './redirect.js';
import { regexProblem } from './regex.js';
import { respondProblems } from './respond.js';
import { hostProblem, pathRewriteProblems } from './rewrite.js';
import type { RouteSpec } from './route.js';
import { splitProblems } from './split.js';

const REWRITE_KEY = { 'strip-prefix': 'strip_prefix', prefix: 'prefix_rewrite', regex: 'regex_rewrite' } as const;

export function routeProblems(route: RouteSpec): string[] {
  const problems: string[] = [];
  const add = (key: string, problem: string | null) => {
    if (problem !== null) problems.push(`${key}: ${problem}`);
  };
  const m = route.match;
  if (m.host !== undefined) add('match.host', hostPatternProblem(m.host));
  const pathKinds = [m.path, m.pathPrefix, m.pathRegex].filter((p) => p !== undefined).length;
  if (pathKinds > 1) add('match', 'give at most one of path, path_prefix and path_regex');
  if (m.path !== undefined) add('match.path', pathProblem(m.path));
  if (m.pathPrefix !== undefined) add('match.path_prefix', pathProblem(m.pathPrefix));
  if (m.pathRegex !== undefined) add('match.path_regex', regexProblem(m.pathRegex));
  if (m.methods !== undefined) {
    if (m.methods.length === 0) add('match.methods', 'an empty list matches nothing: leave methods out to match every method');
    m.methods.forEach((method, i) => add(`match.methods[${i}]`, methodProblem(method)));
  }
  for (const h of m.headers ?? []) add(`match.headers.${h.name}`, headerMatchProblem(h));
  for (const q of m.query ?? []) add(`match.query.${q.name}`, queryMatchProblem(q));

  const a = route.action;
  const forwards = a.kind === 'pool' || a.kind === 'split';
  if (a.kind === 'split') {
    // splitProblems says "[1].weight: ..." for a target, "split_key: ..." for the key, else about the list.
    for (const p of splitProblems(a.targets, a.key)) problems.push(p.startsWith('[') ? `split${p}` : p.startsWith('split_key') ? p : `split: ${p}`);
  }
  if (a.kind === 'redirect') for (const p of redirectProblems(a.redirect, m)) problems.push(`redirect.${p}`);
  if (a.kind === 'respond') for (const p of respondProblems(a.respond)) problems.push(`respond.${p}`);

  // Request-side settings mean nothing when no request goes upstream.
  const upstreamOnly: [string, unknown][] = [
    [route.rewrite === undefined ? '' : REWRITE_KEY[route.rewrite.kind], route.rewrite],
    ['host_rewrite', route.hostRewrite],
    ['request_headers', route.requestHeaders],
    ['timeout_ms', route.overrides?.requestTimeoutMs],
    ['retries', route.overrides?.retries],
    ['max_body_bytes', route.overrides?.maxBodyBytes],
  ];
  if (!forwards) for (const [key, value] of upstreamOnly) if (value !== undefined) add(key, `has no effect with a ${a.kind} action`);
  if (route.rewrite !== undefined) problems.push(...pathRewriteProblems(route.rewrite, m));
  if (route.hostRewrite !== undefined) add('host_rewrite', hostProblem(route.hostRewrite));
  if (route.requestHeaders !== undefined) for (const p of headerOpsProblems(route.requestHeaders, 'request')) problems.push(`request_headers.${p}`);
  if (route.responseHeaders !== undefined) for (const p of headerOpsProblems(route.responseHeaders, 'response')) problems.push(`response_headers.${p}`);
  return problems;
}
