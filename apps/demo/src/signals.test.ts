// `npm run demo` stopped by SIGTERM or SIGINT mid-run, as a subprocess: it stops its worker and API, its
// private redis-server and embedded Postgres, removes its temporary files and exits 128 + the signal.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

async function stopDemoWith(signal: 'SIGTERM' | 'SIGINT') {
  // A temporary directory of its own: everything the demo creates there must be gone afterwards.
  const temp = await mkdtemp(join(tmpdir(), 'rlhf-demo-signal-'));
  const env = { ...process.env, TMPDIR: temp, LOG_LEVEL: 'silent' } as Record<string, string | undefined>;
  for (const name of ['DATABASE_URL', 'REDIS_URL', 'ARTIFACT_DIR', 'PORT']) delete env[name];
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    // Mid-run: the worker is training the first stage.
    const deadline = Date.now() + 90_000;
    while (!/\nsft +\[/.test(output)) {
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`the demo did not start:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const port = Number(/private redis-server at redis:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1]);
    expect(await accepts(port)).toBe(true);
    child.kill(signal);
    const code = await exited;
    // tsx keeps its compile cache in the temporary directory: that one is not the demo's.
    const leftInTemp = (await readdir(temp)).filter((name) => !name.startsWith('tsx-'));
    return { code, output, redisUp: await accepts(port), leftInTemp };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await rm(temp, { recursive: true, force: true });
  }
}

describe('the demo on a stop signal', () => {
  test('SIGTERM: redis-server stopped, temporary files removed, exit 143', async () => {
    const stopped = await stopDemoWith('SIGTERM');
    expect(stopped.code, stopped.output).toBe(143);
    expect(stopped.redisUp).toBe(false);
    expect(stopped.leftInTemp).toEqual([]);
    expect(stopped.output).toContain('SIGTERM: stopping the demo');
    expect(stopped.output).not.toMatch(/\n\s+at /); // no stack trace from requests cut by the stop
  });

  test('SIGINT (Ctrl-C): the same, exit 130', async () => {
    const stopped = await stopDemoWith('SIGINT');
    expect(stopped.code, stopped.output).toBe(130);
    expect(stopped.redisUp).toBe(false);
    expect(stopped.leftInTemp).toEqual([]);
  });
});
