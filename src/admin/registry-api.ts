// The registration API on the admin listener (behind the same token, Host and mutation guards as
// every other call; PUT and DELETE need the x-sluice-admin header like POST does):
//   PUT    /api/registry/:pool        {"url", "weight"?, "ttl_s"?, "id"?, "zone"?}: register, or heartbeat
//   DELETE /api/registry/:pool/:id    deregister
//   GET    /api/registry/:pool        this pool's registrations
// The store (etcd when the pool has an etcd source, else memory) is src/discovery/registry.ts.

import type { Registry, RegistryAnswer } from '../discovery/registry.js';

export const REGISTRY_PATH = /^\/api\/registry\/([^/]+)(?:\/([^/]+))?$/;

export interface RegistryReply {
  readonly status: number;
  readonly body: unknown;
}

/** One call; `segments` are the decoded pool and optional id, `body` the request text (PUT). */
export async function registryCall(registry: Registry | undefined, method: string, pool: string, id: string | undefined, body: string): Promise<RegistryReply> {
  if (registry === undefined) return { status: 404, body: { error: 'no pool takes registrations (give one registry: true or a discovery source)' } };
  if (id === undefined && method === 'PUT') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return { status: 400, body: { error: 'body must be JSON: {"url": "http://10.0.0.5:8080", "weight": 1, "ttl_s": 30}' } };
    }
    return reply(await registry.register(pool, parsed), 200, (value) => ({ pool, store: storeOf(registry, pool), registration: value }));
  }
  if (id === undefined && (method === 'GET' || method === 'HEAD')) {
    return reply(await registry.list(pool), 200, (value) => ({ pool, ...value }));
  }
  if (id !== undefined && method === 'DELETE') {
    return reply(await registry.deregister(pool, id), 200, (value) => ({ pool, deleted: value.id }));
  }
  const allowed = id === undefined ? 'GET, HEAD, PUT' : 'DELETE';
  return { status: 405, body: { error: `method ${method} not allowed`, allow: allowed } };
}

function storeOf(registry: Registry, pool: string): string {
  const s = registry.store(pool);
  return s.ok ? s.value : 'none';
}

function reply<T>(answer: RegistryAnswer<T>, status: number, view: (value: T) => unknown): RegistryReply {
  return answer.ok ? { status, body: view(answer.value) } : { status: answer.status, body: { error: answer.error } };
}
