// One line per route for `sluice --explain`: what its edge policy will check, in check order.

import type { EdgeSpec } from '../model/edge.js';

export function describeEdge(e: EdgeSpec): string {
  const parts: string[] = [];
  if (e.ipDeny !== undefined) parts.push(`ip_deny ${e.ipDeny.length} block(s)`);
  if (e.ipAllow !== undefined) parts.push(`ip_allow ${e.ipAllow.length} block(s)`);
  if (e.cors !== undefined) parts.push(`cors ${e.cors.origins.join(' ')}`);
  for (const l of e.rateLimit ?? []) {
    const key = l.key.kind === 'header' ? `header:${l.key.name}` : l.key.kind === 'jwt' ? `jwt:${l.key.claim}` : l.key.kind;
    parts.push(`rate_limit ${key} ${l.count}/${l.periodMs}ms burst ${l.burst}${l.global === null ? '' : ` global (fail ${l.fail})`}`);
  }
  const a = e.auth;
  if (a !== undefined) {
    const kind = a.jwt ? 'jwt' : a.introspection ? 'introspection' : a.apiKeys ? 'api_keys' : a.basic ? 'basic' : 'forward';
    parts.push(`auth ${kind}`);
  }
  if (e.maxInFlight !== undefined) parts.push(`max_in_flight ${e.maxInFlight}`);
  return parts.join(', ');
}
