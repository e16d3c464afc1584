// Prisma's schema engine compiled to WebAssembly, driven through the pg driver adapter. The Prisma CLI
// insists on a native engine it downloads at run time; this one works offline. Development only: it
// writes new migrations and checks that migrations, schema and database agree.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PrismaPg } from '@prisma/adapter-pg';
import {
  bindMigrationAwareSqlAdapterFactory,
  type SqlDriverAdapter,
  type SqlMigrationAwareDriverAdapterFactory,
} from '@prisma/driver-adapter-utils';
import * as wasmBindings from '@prisma/schema-engine-wasm/schema_engine_bg';
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import { migrationsDir, readMigrations } from './migrate.js';

export type { DiagnoseMigrationHistoryOutput } from '@prisma/schema-engine-wasm/schema_engine_bg';

/** The repository's Prisma schema. */
export const schemaPath = fileURLToPath(new URL('../../../prisma/schema.prisma', import.meta.url));

const NO_FILTER = { externalTables: [], externalEnums: [] };

// Node's global, absent from the ES and @types/node 20 typings we compile against.
declare const WebAssembly: {
  instantiate(
    bytes: Uint8Array,
    imports: object,
  ): Promise<{ instance: { exports: Record<string, unknown> } }>;
};

let instantiated: Promise<void> | undefined;

// wasm-bindgen glue: instantiate the module once with the JS bindings as its imports.
function instantiate(): Promise<void> {
  instantiated ??= (async () => {
    const require = createRequire(import.meta.url);
    const bindings = require.resolve('@prisma/schema-engine-wasm/schema_engine_bg');
    const bytes = await readFile(join(bindings, '..', 'schema_engine_bg.wasm'));
    const { instance } = await WebAssembly.instantiate(bytes, { './schema_engine_bg.js': wasmBindings });
    wasmBindings.__wbg_set_wasm(instance.exports);
    (instance.exports.__wbindgen_start as () => void)();
  })();
  return instantiated;
}

const PG_CHAR = 18;
const PG_TEXT = 25;

// The engine's catalog queries return PostgreSQL's one-byte "char" type, which adapter-pg 7 refuses to
// map; relabel it as text (same wire format) before pg builds the result.
class CharAsTextClient extends pg.Client {
  constructor(config?: string | pg.ClientConfig) {
    super(config);
    this.connection.prependListener('rowDescription', (message: { fields: { dataTypeID: number }[] }) => {
      for (const field of message.fields) if (field.dataTypeID === PG_CHAR) field.dataTypeID = PG_TEXT;
    });
  }
}

// The engine's connections: the target database, plus throwaway shadow databases on the same server
// (adapter-pg's own shadow handling drops the database while its pool is still connected).
function connections(config: pg.PoolConfig, pool: pg.Pool): SqlMigrationAwareDriverAdapterFactory {
  const target = new PrismaPg(pool);
  return {
    provider: target.provider,
    adapterName: target.adapterName,
    connect: () => target.connect(),
    connectToShadowDb: async (): Promise<SqlDriverAdapter> => {
      const database = `prisma_migrate_shadow_db_${randomUUID()}`;
      await pool.query(`CREATE DATABASE "${database}"`);
      const shadowPool = new pg.Pool({ ...config, database });
      const shadow = await new PrismaPg(shadowPool).connect();
      return Object.assign(shadow, {
        dispose: async () => {
          await shadowPool.end();
          await pool.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
        },
      });
    },
  };
}

export interface SchemaEngine {
  /** SQL that takes a database with the migrations applied to the schema ('' when they agree). */
  pendingSql(): Promise<string>;
  /** SQL that takes the database at `databaseUrl` to the schema ('' when they agree). */
  driftSql(): Promise<string>;
  /** Prisma's view of the database's `_prisma_migrations` compared with the migrations folder. */
  diagnose(): Promise<wasmBindings.DiagnoseMigrationHistoryOutput>;
  close(): Promise<void>;
}

/**
 * Opens the schema engine on `databaseUrl` (shadow databases for `pendingSql` are created and dropped
 * on the same server).
 */
export async function openSchemaEngine(
  databaseUrl: string,
  dir: string = migrationsDir,
): Promise<SchemaEngine> {
  await instantiate();
  const schema = { path: schemaPath, content: await readFile(schemaPath, 'utf8') };
  // Parsed fields, not a connectionString: shadow pools override `database`, which a
  // connectionString would silently take precedence over.
  const config = { ...parseIntoClientConfig(databaseUrl), Client: CharAsTextClient };
  const pool = new pg.Pool(config);
  const adapter = bindMigrationAwareSqlAdapterFactory(connections(config, pool));
  const engine = await wasmBindings.SchemaEngine.new(
    { datamodels: [[schema.path, schema.content]] },
    () => {},
    adapter,
  );
  const migrationsList = async (): Promise<wasmBindings.MigrationList> => ({
    baseDir: dir,
    lockfile: {
      path: 'migration_lock.toml',
      content: await readFile(join(dir, 'migration_lock.toml'), 'utf8'),
    },
    shadowDbInitScript: '',
    migrationDirectories: (await readMigrations(dir)).map((migration) => ({
      path: migration.name,
      migrationFile: { path: 'migration.sql', content: { tag: 'ok', value: migration.sql } },
    })),
  });
  const toSchema = { tag: 'schemaDatamodel' as const, files: [schema] };
  const script = async (from: wasmBindings.DiffTarget): Promise<string> => {
    const result = await engine.diff({
      from,
      to: toSchema,
      script: true,
      exitCode: null,
      filters: NO_FILTER,
    });
    return emptyScript(result.stdout ?? '');
  };
  return {
    pendingSql: async () => script({ tag: 'migrations', ...(await migrationsList()) }),
    driftSql: async () => script({ tag: 'schemaDatasource', files: [schema], configDir: dir }),
    diagnose: async () =>
      engine.diagnoseMigrationHistory({
        migrationsList: await migrationsList(),
        optInToShadowDatabase: false,
        filters: NO_FILTER,
      }),
    close: async () => {
      engine.free();
      await pool.end();
    },
  };
}

// The engine answers "-- This is an empty migration." when there is nothing to do.
function emptyScript(sql: string): string {
  return /^\s*(-- This is an empty migration\.\s*)?$/.test(sql) ? '' : sql;
}
