// Runs before the test workers start, for the projects that need Redis and Postgres (vitest.config.ts lists
// them; the others start with no services): checks the services, creates this run's database and hands its
// URL to those projects' tests (inject('databaseUrl') or process.env.TEST_DATABASE_URL).
import { checkPostgres, checkRedis, DEFAULT_REDIS_URL, StartupError } from '@rlhf/config';
import { createTestDatabase, DEFAULT_DATABASE_URL, type TestDatabase } from '@rlhf/db';
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A migrated database created for this test run and dropped after it. */
    databaseUrl: string;
    redisUrl: string;
  }
}

interface Shared {
  database: Promise<TestDatabase>;
  users: number;
}

// Vitest calls it once per project that lists it; they all share one database, dropped by the last teardown.
const state = globalThis as { rlhfTestDatabase?: Shared };

async function start(serverUrl: string, redisUrl: string): Promise<TestDatabase> {
  try {
    await Promise.all([checkRedis(redisUrl), checkPostgres(serverUrl)]);
  } catch (error) {
    // Vitest prints the stack of a failing global setup; the message alone says what to start.
    if (error instanceof StartupError) error.stack = error.message;
    throw error;
  }
  return createTestDatabase({ serverUrl });
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const serverUrl = process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
  const redisUrl = process.env.REDIS_URL ?? DEFAULT_REDIS_URL;
  state.rlhfTestDatabase ??= { database: start(serverUrl, redisUrl), users: 0 };
  const shared = state.rlhfTestDatabase;
  shared.users += 1;
  const database = await shared.database;
  process.env.TEST_DATABASE_URL = database.url;
  process.env.REDIS_URL = redisUrl;
  project.provide('databaseUrl', database.url);
  project.provide('redisUrl', redisUrl);
  return async () => {
    shared.users -= 1;
    if (shared.users > 0) return;
    state.rlhfTestDatabase = undefined;
    await database.drop();
  };
}
