// Probes against the real services, and against ports and hosts where nothing listens.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { checkPostgres, checkRedis } from './checks.js';
import { UnreachableError } from './errors.js';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const databaseUrl = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';

async function failure(probe: Promise<void>): Promise<UnreachableError> {
  const error = await probe.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(UnreachableError);
  return error as UnreachableError;
}

describe('checkRedis', () => {
  test('passes on the running Redis', async () => {
    await expect(checkRedis(redisUrl)).resolves.toBeUndefined();
  });

  test('names REDIS_URL and the host when nothing listens on the port', async () => {
    const error = await failure(checkRedis('redis://127.0.0.1:6390'));
    expect(error.message).toBe('REDIS_URL: cannot reach Redis at 127.0.0.1:6390 (ECONNREFUSED)');
    expect(error.variable).toBe('REDIS_URL');
  });
});

describe('checkPostgres', () => {
  test('passes on the running PostgreSQL', async () => {
    await expect(checkPostgres(databaseUrl)).resolves.toBeUndefined();
  });

  test('names DATABASE_URL and the host when the host is wrong', async () => {
    const error = await failure(checkPostgres('postgresql://postgres@127.0.0.2:5432/test'));
    expect(error.message).toBe('DATABASE_URL: cannot reach PostgreSQL at 127.0.0.2:5432 (ECONNREFUSED)');
  });

  test('reports an unknown host by its DNS error', async () => {
    const error = await failure(checkPostgres('postgresql://postgres@db.invalid:5432/test'));
    expect(error.message).toBe('DATABASE_URL: cannot reach PostgreSQL at db.invalid:5432 (ENOTFOUND)');
  });

  test("passes on the server's own error for a missing database, on one line", async () => {
    const url = new URL(databaseUrl);
    url.pathname = '/no_such_database';
    const error = await failure(checkPostgres(url.toString(), 'TEST_DB'));
    expect(error.message).toBe(
      `TEST_DB: cannot reach PostgreSQL at ${url.hostname}:${url.port || 5432} (3D000: database "no_such_database" does not exist)`,
    );
  });
});

describe('runMain', () => {
  test('prints a startup failure as one line and exits 1', () => {
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    const program = `
      import { checkRedis, runMain } from '@rlhf/config';
      runMain(() => checkRedis('redis://127.0.0.1:6390'));
    `;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', program], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(child.status).toBe(1);
    expect(child.stderr).toBe('REDIS_URL: cannot reach Redis at 127.0.0.1:6390 (ECONNREFUSED)\n');
  });
});
