// Servers and disks of the chaos suite's own, so a fault hurts no other test: a Redis started empty after a
// kill -9, a Postgres cluster stopped the way a crash stops it (pg_ctl -m immediate) and started again, and
// a tiny tmpfs for the artifact store that can be filled or made read-only.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { sleep } from './env.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms`);
    await sleep(50);
  }
}

export const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;

/** A redis-server without persistence: a kill -9 and start loses every key (stream, groups, queue). */
export async function privateRedis() {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let server: ChildProcess | null = null;
  const up = async () => {
    server = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    await until(
      async () => {
        const probe = new Redis(url, {
          lazyConnect: true,
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
        });
        probe.on('error', () => {});
        try {
          await probe.connect();
          return (await probe.ping()) === 'PONG';
        } catch {
          return false;
        } finally {
          probe.disconnect();
        }
      },
      10_000,
      'redis-server up',
    );
  };
  await up();
  return {
    url,
    async kill() {
      const killed = server as ChildProcess | null;
      if (!killed || killed.exitCode !== null) return;
      const exited = new Promise((resolve) => killed.once('exit', resolve));
      killed.kill('SIGKILL');
      await exited;
    },
    start: up,
    async close() {
      await this.kill();
    },
  };
}

const PG_BIN = ['/usr/local/bin', ...['17', '16', '15', '14'].map((v) => `/usr/lib/postgresql/${v}/bin`)];
const pgTool = (name: string) =>
  [name, ...PG_BIN.map((dir) => join(dir, name))].find((path) => spawnSync(path, ['--version']).status === 0);
const isRoot = process.getuid?.() === 0;
// initdb and postgres refuse to run as root: run them as the postgres user then.
const asPostgres = (tool: string, args: string[]) =>
  isRoot
    ? execFileSync('runuser', ['-u', 'postgres', '--', tool, ...args], { stdio: 'pipe' })
    : execFileSync(tool, args, { stdio: 'pipe' });

/** Whether a private cluster can be made here (initdb and pg_ctl, and a postgres user when root). */
export const canRunPostgres = (): boolean =>
  Boolean(pgTool('initdb') && pgTool('pg_ctl')) &&
  (!isRoot || spawnSync('id', ['-u', 'postgres']).status === 0);

/** A throwaway Postgres cluster on a free port (trust auth, fsync off). */
export async function privatePostgres() {
  const initdb = pgTool('initdb') as string;
  const pgCtl = pgTool('pg_ctl') as string;
  const dir = mkdtempSync(join(tmpdir(), 'chaos-pg-'));
  if (isRoot)
    chownSync(
      dir,
      Number(execFileSync('id', ['-u', 'postgres']).toString()),
      Number(execFileSync('id', ['-g', 'postgres']).toString()),
    );
  const data = join(dir, 'data');
  const port = await freePort();
  asPostgres(initdb, ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  const start = () =>
    asPostgres(pgCtl, ['-D', data, '-o', options, '-l', join(dir, 'log'), '-w', '-t', '60', 'start']);
  start();
  return {
    serverUrl: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    /** Stops as a crash does: no shutdown checkpoint, every connection cut; the next start runs recovery. */
    crash() {
      asPostgres(pgCtl, ['-D', data, '-m', 'immediate', '-w', 'stop']);
    },
    start,
    close() {
      try {
        asPostgres(pgCtl, ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {}
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether this process may mount a tmpfs (root in a container that allows it). */
export function canMountTmpfs(): boolean {
  if (!isRoot) return false;
  const dir = mkdtempSync(join(tmpdir(), 'chaos-mount-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]).status === 0;
  if (mounted) spawnSync('umount', [dir]);
  rmSync(dir, { recursive: true, force: true });
  return mounted;
}

/** A tmpfs of `size` (e.g. '64m') mounted on `dir`. */
export function tmpfsDisk(dir: string, size: string) {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  const filler = join(dir, '.chaos-filler');
  const remount = async (mode: 'ro' | 'rw') => {
    // A remount to read-only is refused while a file is open for writing: try again shortly.
    for (let tries = 0; ; tries++) {
      if (spawnSync('mount', ['-o', `remount,${mode}`, dir]).status === 0) return;
      if (tries > 100) throw new Error(`remount,${mode} ${dir} refused`);
      await sleep(20);
    }
  };
  return {
    /** Takes every free byte. */
    fill() {
      spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1M'], { stdio: 'ignore' }); // stops at ENOSPC
    },
    free() {
      rmSync(filler, { force: true });
    },
    readOnly: () => remount('ro'),
    writable: () => remount('rw'),
    unmount() {
      spawnSync('umount', ['-l', dir]);
    },
  };
}
