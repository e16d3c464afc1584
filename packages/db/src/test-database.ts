// Throwaway databases for tests: one per test run, created on the server that DATABASE_URL points to.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from './migrate.js';

export const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/test';

const PREFIX = 'rlhf_test_';
// Databases left behind by killed runs are dropped once they are this old.
const STALE_SECONDS = 24 * 60 * 60;

export interface TestDatabase {
  /** Connection URL of the new, migrated database. */
  url: string;
  drop(): Promise<void>;
}

export interface TestDatabaseOptions {
  /** Any database on the server to use (default: DATABASE_URL, else the local `test` database). */
  serverUrl?: string;
  /** Apply the migrations (default true); false gives an empty database. */
  migrate?: boolean;
}

/** Creates `rlhf_test_<time>_<random>` on the server of `serverUrl` and applies every migration. */
export async function createTestDatabase(options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const serverUrl = options.serverUrl ?? process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
  const now = Math.floor(Date.now() / 1000);
  const name = `${PREFIX}${now}_${randomBytes(4).toString('hex')}`;
  await withServer(serverUrl, async (client) => {
    await dropStale(client, now);
    await client.query(`CREATE DATABASE "${name}"`);
  });
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const database: TestDatabase = {
    url: url.toString(),
    drop: async () => {
      await withServer(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
  try {
    if (options.migrate !== false) await migrate(database.url);
  } catch (error) {
    await database.drop();
    throw error;
  }
  return database;
}

/** The database test/global-setup.ts created for this test run (shared by all test files). */
export function testDatabaseUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url)
    throw new Error('TEST_DATABASE_URL is unset: run the tests with vitest (test/global-setup.ts sets it)');
  return url;
}

async function dropStale(client: pg.Client, now: number): Promise<void> {
  const { rows } = await client.query<{ datname: string }>(
    'SELECT datname FROM pg_database WHERE datname LIKE $1',
    [`${PREFIX}%`],
  );
  for (const { datname } of rows) {
    const created = Number(datname.slice(PREFIX.length).split('_')[0]);
    if (now - created > STALE_SECONDS)
      await client.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
  }
}

async function withServer<T>(serverUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
