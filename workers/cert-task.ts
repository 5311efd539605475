// Piscina task: one certificate (a CA or a leaf) per call, made off the caller's event loop.
// src/tls/cert-pool.ts owns the pool; src/tls/generate.ts does the work.

import { createCa, createLeaf, type CaRequest, type KeyPairPem, type LeafRequest } from '../src/tls/generate.js';

export type CertTask = ({ readonly kind: 'ca' } & CaRequest) | ({ readonly kind: 'leaf' } & LeafRequest);

export default function certTask(task: CertTask): KeyPairPem {
  return task.kind === 'ca' ? createCa(task) : createLeaf(task);
}
