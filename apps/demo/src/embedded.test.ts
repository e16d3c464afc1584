import { createPrisma, migrate } from '@rlhf/db';
import { Redis } from 'ioredis';
import { expect, test } from 'vitest';
import { startEmbeddedPostgres, startPrivateRedis } from './embedded.js';

test('embedded Postgres (PGlite) takes our migrations and Prisma queries through the pg adapter', async () => {
  const pg = await startEmbeddedPostgres();
  try {
    const { applied } = await migrate(pg.url);
    expect(applied.length).toBeGreaterThan(0);
    expect((await migrate(pg.url)).applied).toEqual([]);
    const prisma = createPrisma(pg.url);
    try {
      const team = await prisma.team.create({ data: { name: 'demo-team' } });
      const [found, count] = await Promise.all([
        prisma.team.findUniqueOrThrow({ where: { id: team.id } }),
        prisma.team.count(),
      ]);
      expect(found.name).toBe('demo-team');
      expect(count).toBe(1);
    } finally {
      await prisma.$disconnect();
    }
  } finally {
    await pg.stop();
  }
});

test('a private redis-server starts on a free port and stops', async () => {
  const redis = await startPrivateRedis();
  const client = new Redis(redis.url);
  try {
    expect(await client.ping()).toBe('PONG');
  } finally {
    client.disconnect();
    await redis.stop();
  }
});
