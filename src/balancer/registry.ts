// Every balancing policy by its configured name (SLUICE_BALANCER): one line each.

import type { BalancerName } from '../config/types.js';
import type { SharedTable } from '../state/table.js';
import { leastConn } from './least-conn.js';
import { leastRequest } from './least-request.js';
import { maglev } from './maglev.js';
import { peakEwma } from './peak-ewma.js';
import { peakEwmaClassic } from './peak-ewma-classic.js';
import type { Member, Policy, PolicyFactory, PolicyOptions } from './policy.js';
import { random } from './random.js';
import { ringHash } from './ring-hash.js';
import { roundRobin } from './round-robin.js';
import { weightedRandom } from './weighted-random.js';
import { weightedRoundRobin } from './weighted-round-robin.js';

export const policies: Record<BalancerName, PolicyFactory> = {
  'round-robin': roundRobin,
  'weighted-round-robin': weightedRoundRobin,
  random: random,
  'weighted-random': weightedRandom,
  'least-request': leastRequest,
  'peak-ewma': peakEwma,
  'peak-ewma-classic': peakEwmaClassic,
  'least-conn': leastConn,
  'ring-hash': ringHash,
  maglev: maglev,
};

/** Build the named policy for one pool; call again whenever the pool's membership changes. */
export function createPolicy(name: BalancerName, table: SharedTable, members: readonly Member[], options: PolicyOptions): Policy {
  const factory = Object.hasOwn(policies, name) ? policies[name] : undefined;
  if (!factory) throw new TypeError(`unknown balancer "${String(name)}" (expected one of: ${Object.keys(policies).join(', ')})`);
  return factory(table, members, options);
}
