// The services every integration test relies on, as test/global-setup.ts hands them out.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createPrisma, createTestDatabase, readMigrations } from '@rlhf/db';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, test } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('redis', () => {
  const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: 1 });
  afterAll(() => redis.quit());

  test('round-trips a value and a stream entry', async () => {
    const key = `rlhf:test:${randomBytes(6).toString('hex')}`;
    await redis.set(key, 'hello', 'EX', 60);
    expect(await redis.get(key)).toBe('hello');
    const stream = `${key}:metrics`;
    const id = await redis.xadd(stream, '*', 'name', 'objective/kl', 'value', '0.02');
    expect(await redis.xrange(stream, '-', '+')).toEqual([[id, ['name', 'objective/kl', 'value', '0.02']]]);
    expect(await redis.del(key, stream)).toBe(2);
  });
});

describe('postgres', () => {
  const prisma = createPrisma(inject('databaseUrl'));
  afterAll(() => prisma.$disconnect());

  test('the shared test database is migrated and the same as TEST_DATABASE_URL', async () => {
    expect(process.env.TEST_DATABASE_URL).toBe(inject('databaseUrl'));
    const rows = await prisma.$queryRaw<{ migration_name: string }[]>`
      SELECT migration_name FROM "_prisma_migrations" ORDER BY migration_name`;
    expect(rows.map((row) => row.migration_name)).toEqual((await readMigrations()).map((m) => m.name));
  });

  test('creates a team and an API key and reads them back', async () => {
    const name = `team-${randomBytes(6).toString('hex')}`;
    const prefix = `rlhf_${randomBytes(6).toString('hex')}`;
    await prisma.team.create({
      data: {
        name,
        apiKeys: { create: { name: 'default', prefix, sha256: randomBytes(32).toString('hex') } },
      },
    });
    const team = await prisma.team.findUniqueOrThrow({ where: { name }, include: { apiKeys: true } });
    expect(team.apiKeys.map((key) => key.prefix)).toEqual([prefix]);
  });
});

describe('npm run db:migrate', () => {
  const migrateCli = (databaseUrl: string) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'scripts/migrate.ts'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, DATABASE_URL: databaseUrl },
    });

  test('applies the migrations once, then reports the database up to date', async () => {
    const database = await createTestDatabase({ migrate: false });
    try {
      const names = (await readMigrations()).map((m) => m.name);
      const first = migrateCli(database.url);
      expect(first.stdout).toBe(`applied ${names.join(', ')}\n`);
      expect(first.status).toBe(0);
      const second = migrateCli(database.url);
      expect(second.stdout).toBe('database is up to date\n');
    } finally {
      await database.drop();
    }
  });

  test('a wrong host fails with one line naming DATABASE_URL and the host', () => {
    const run = migrateCli('postgresql://postgres@127.0.0.2:5432/rlhf');
    expect(run.status).toBe(1);
    expect(run.stderr).toBe('DATABASE_URL: cannot reach PostgreSQL at 127.0.0.2:5432 (ECONNREFUSED)\n');
  });
});
