import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { checksum, migrate, migrationsDir, readMigrations } from './migrate.js';
import { openSchemaEngine } from './schema-engine.js';
import { createTestDatabase, type TestDatabase } from './test-database.js';

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

interface MigrationRow {
  id: string;
  checksum: string;
  migration_name: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  logs: string | null;
  applied_steps_count: number;
}

describe('migrate', () => {
  const databases: TestDatabase[] = [];
  const folders: string[] = [];
  const emptyDatabase = async () => {
    const database = await createTestDatabase({ migrate: false });
    databases.push(database);
    return database.url;
  };
  // A copy of the repository's migrations that a test may extend or edit.
  const migrationsCopy = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rlhf-migrations-'));
    folders.push(dir);
    await cp(migrationsDir, dir, { recursive: true });
    return dir;
  };

  afterAll(async () => {
    await Promise.all(databases.map((database) => database.drop()));
    await Promise.all(folders.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  test('applies every migration once and records it the way Prisma does', async () => {
    const url = await emptyDatabase();
    const migrations = await readMigrations();
    expect(migrations.length).toBeGreaterThan(0);

    const first = await migrate(url);
    expect(first.applied).toEqual(migrations.map((migration) => migration.name));
    const second = await migrate(url);
    expect(second.applied).toEqual([]);

    const rows = await query<MigrationRow>(url, 'SELECT * FROM "_prisma_migrations" ORDER BY migration_name');
    expect(rows.map((row) => row.migration_name)).toEqual(migrations.map((migration) => migration.name));
    for (const [i, row] of rows.entries()) {
      expect(row.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(row.checksum).toBe(checksum(migrations[i].sql));
      expect(row.checksum).toMatch(/^[0-9a-f]{64}$/);
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.rolled_back_at).toBeNull();
      expect(row.logs).toBeNull();
      expect(row.applied_steps_count).toBe(1);
    }
  });

  test('creates _prisma_migrations with the columns and types of Prisma', async () => {
    const url = await emptyDatabase();
    await migrate(url);
    const columns = await query<{ column_name: string; data_type: string; is_nullable: string }>(
      url,
      `SELECT column_name, data_type, is_nullable FROM information_schema.columns
       WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position`,
    );
    expect(columns.map((column) => [column.column_name, column.data_type, column.is_nullable])).toEqual([
      ['id', 'character varying', 'NO'],
      ['checksum', 'character varying', 'NO'],
      ['finished_at', 'timestamp with time zone', 'YES'],
      ['migration_name', 'character varying', 'NO'],
      ['logs', 'text', 'YES'],
      ['rolled_back_at', 'timestamp with time zone', 'YES'],
      ['started_at', 'timestamp with time zone', 'NO'],
      ['applied_steps_count', 'integer', 'NO'],
    ]);
  });

  test("Prisma's schema engine accepts the history and finds the database equal to schema.prisma", async () => {
    const url = await emptyDatabase();
    await migrate(url);
    const engine = await openSchemaEngine(url);
    try {
      expect(await engine.diagnose()).toEqual({
        editedMigrationNames: [],
        failedMigrationNames: [],
        hasMigrationsTable: true,
        history: null,
      });
      expect(await engine.driftSql()).toBe('');
      expect(await engine.pendingSql()).toBe('');
      // The comparison sees real differences: a column the schema does not have.
      await query(url, 'ALTER TABLE "Team" ADD COLUMN "note" TEXT');
      expect(await engine.driftSql()).toContain('DROP COLUMN "note"');
    } finally {
      await engine.close();
    }
  });

  test('concurrent runs apply each migration exactly once', async () => {
    const url = await emptyDatabase();
    const results = await Promise.all([migrate(url), migrate(url), migrate(url)]);
    const applied = results.flatMap((result) => result.applied);
    expect(applied).toEqual((await readMigrations()).map((migration) => migration.name));
    const [{ count }] = await query<{ count: string }>(url, 'SELECT count(*) FROM "_prisma_migrations"');
    expect(Number(count)).toBe(applied.length);
  });

  test('applies a new migration after the applied ones', async () => {
    const url = await emptyDatabase();
    const dir = await migrationsCopy();
    await migrate(url, dir);
    await cp(join(dir, (await readMigrations(dir))[0].name), join(dir, '29991231000000_add_note'), {
      recursive: true,
    });
    await writeFile(
      join(dir, '29991231000000_add_note', 'migration.sql'),
      'ALTER TABLE "Team" ADD COLUMN "note" TEXT;',
    );
    expect((await migrate(url, dir)).applied).toEqual(['29991231000000_add_note']);
    const columns = await query<{ column_name: string }>(
      url,
      `SELECT column_name FROM information_schema.columns WHERE table_name = 'Team' AND column_name = 'note'`,
    );
    expect(columns).toHaveLength(1);
  });

  test('rolls back a failing migration completely and leaves no record', async () => {
    const url = await emptyDatabase();
    const dir = await migrationsCopy();
    await migrate(url, dir);
    await cp(join(dir, (await readMigrations(dir))[0].name), join(dir, '29991231000000_broken'), {
      recursive: true,
    });
    await writeFile(
      join(dir, '29991231000000_broken', 'migration.sql'),
      'CREATE TABLE "Half" ("id" TEXT);\nALTER TABLE "Missing" ADD COLUMN "x" TEXT;',
    );
    await expect(migrate(url, dir)).rejects.toThrow(
      /migration 29991231000000_broken failed and was rolled back: relation "Missing" does not exist/,
    );
    expect(
      await query(url, `SELECT 1 FROM information_schema.tables WHERE table_name = 'Half'`),
    ).toHaveLength(0);
    expect(
      await query(url, `SELECT 1 FROM "_prisma_migrations" WHERE migration_name = '29991231000000_broken'`),
    ).toHaveLength(0);
  });

  test('refuses to run when an applied migration was edited', async () => {
    const url = await emptyDatabase();
    const dir = await migrationsCopy();
    await migrate(url, dir);
    const [first] = await readMigrations(dir);
    await writeFile(join(dir, first.name, 'migration.sql'), `${first.sql}\n-- edited\n`);
    await expect(migrate(url, dir)).rejects.toThrow(
      `migration ${first.name} was edited after it was applied`,
    );
  });
});

describe('createTestDatabase', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });

  test('creates a migrated database and drops it', async () => {
    const name = new URL(database.url).pathname.slice(1);
    expect(name).toMatch(/^rlhf_test_\d+_[0-9a-f]{8}$/);
    const tables = await query<{ table_name: string }>(
      database.url,
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`,
    );
    expect(tables.map((table) => table.table_name)).toEqual([
      'ApiKey',
      'Artifact',
      'Dataset',
      'Evaluation',
      'File',
      'MetricPoint',
      'Model',
      'Run',
      'RunEvent',
      'Sample',
      'Stage',
      'Team',
      '_prisma_migrations',
    ]);
    await database.drop();
    const server = new URL(database.url);
    server.pathname = '/postgres';
    const left = await query(server.toString(), `SELECT 1 FROM pg_database WHERE datname = '${name}'`);
    expect(left).toHaveLength(0);
  });
});
