import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

/** A service the demo started itself, with the URL clients use and how to stop it. */
export interface EmbeddedService {
  url: string;
  stop(): Promise<void>;
}

/**
 * Postgres in-process (PGlite, Postgres compiled to WASM) behind its wire-protocol socket server, so the
 * unchanged `pg` driver, Prisma's adapter-pg and our migration runner talk to it like to a real server.
 */
export async function startEmbeddedPostgres(): Promise<EmbeddedService> {
  const db = await PGlite.create();
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 16 });
  await server.start();
  const port = Number(String(server.getServerConn()).split(':').pop());
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres?sslmode=disable`,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}

/** A free TCP port on the loopback interface. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

export class MissingRedisError extends Error {
  override name = 'MissingRedisError';
}

/** A private redis-server on a free port, nothing persisted; fails with one line if redis-server is absent. */
export async function startPrivateRedis(): Promise<EmbeddedService> {
  if (spawnSync('redis-server', ['--version']).error) {
    throw new MissingRedisError(
      'REDIS_URL is not set and redis-server is not installed: install Redis (apt-get install redis-server) or set REDIS_URL',
    );
  }
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'rlhf-demo-redis-'));
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  // However the demo ends (an error, process.exit, a second Ctrl-C), its redis-server does not outlive it.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  await waitForPort(port, 10_000);
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      process.removeListener('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server did not start listening on 127.0.0.1:${port} within ${timeoutMs} ms`);
}
