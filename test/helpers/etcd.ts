// A real etcd (Debian's etcd-server) for the discovery tests: one member on free loopback ports
// with its data in a fresh temporary directory, stopped (and its directory removed) at teardown.
// `restart()` stops it and starts it again on the same ports and data, as an outage would.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, type Teardown } from './sluice.js';
import { until } from './wait.js';

export interface Etcd {
  /** http://127.0.0.1:<client port> */
  readonly endpoint: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  restart(): Promise<void>;
  /** etcdctl against this member; stdout. */
  ctl(...args: string[]): string;
}

/** Whether the etcd binary is installed (apt-get install -y etcd-server etcd-client). */
export function etcdInstalled(): boolean {
  return spawnSync('etcd', ['--version'], { encoding: 'utf8' }).status === 0;
}

export async function startEtcd(t: Teardown): Promise<Etcd> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-etcd-'));
  const clientPort = await freePort();
  const peerPort = await freePort();
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  let child: ChildProcess | null = null;
  let output = '';
  const start = async (): Promise<void> => {
    output = '';
    const proc = spawn(
      'etcd',
      [
        '--name', 'test',
        '--data-dir', join(dir, 'data'),
        '--listen-client-urls', endpoint,
        '--advertise-client-urls', endpoint,
        '--listen-peer-urls', peer,
        '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `test=${peer}`,
        '--log-level', 'error',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, ETCD_UNSUPPORTED_ARCH: process.arch === 'x64' ? '' : process.arch } },
    );
    child = proc;
    proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    await until(`etcd on ${endpoint} (output: ${output.slice(-500)})`, async () => {
      if (proc.exitCode !== null) throw new Error(`etcd exited ${proc.exitCode}: ${output.slice(-2000)}`);
      try {
        const r = await fetch(`${endpoint}/health`);
        return r.ok && ((await r.json()) as { health?: string }).health === 'true';
      } catch {
        return false;
      }
    }, 20_000, 50);
  };
  const stop = async (): Promise<void> => {
    const proc = child;
    child = null;
    if (proc === null || proc.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  t.teardown(async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    endpoint,
    stop,
    start,
    restart: async () => {
      await stop();
      await start();
    },
    ctl: (...args) => {
      const r = spawnSync('etcdctl', ['--endpoints', endpoint, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ETCDCTL_API: '3' } });
      if (r.status !== 0) throw new Error(`etcdctl ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    },
  };
}
