// Database migrations without the Prisma CLI's native engine.
//   npm run db:migrate                  apply pending prisma/migrations to DATABASE_URL
//   npm run db:migrate -- create <name> write a migration for the changes in prisma/schema.prisma
//   npm run db:migrate -- check         fail if prisma/schema.prisma has changes without a migration
// `create` and `check` replay the migrations in a throwaway shadow database on DATABASE_URL's server.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkPostgres, ConfigError, runMain } from '@rlhf/config';
import { migrate, migrationsDir } from '@rlhf/db';

async function main(): Promise<void> {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl)
    throw new ConfigError(['DATABASE_URL: required, e.g. postgresql://postgres@127.0.0.1:5432/rlhf']);
  await checkPostgres(databaseUrl);
  const [command, name] = process.argv.slice(2);
  if (command === undefined) return apply(databaseUrl);
  if (command === 'create' && name !== undefined && /^[a-z0-9_]+$/.test(name))
    return create(databaseUrl, name);
  if (command === 'check') return check(databaseUrl);
  throw new ConfigError([
    `usage: db:migrate [create <snake_case_name> | check], got "${process.argv.slice(2).join(' ')}"`,
  ]);
}

async function apply(databaseUrl: string): Promise<void> {
  const { applied } = await migrate(databaseUrl);
  console.log(applied.length === 0 ? 'database is up to date' : `applied ${applied.join(', ')}`);
}

async function pendingSql(databaseUrl: string): Promise<string> {
  // Development-only dependency: loaded here so `apply` works in production installs.
  const { openSchemaEngine } = await import('@rlhf/db/schema-engine');
  const engine = await openSchemaEngine(databaseUrl);
  try {
    return await engine.pendingSql();
  } finally {
    await engine.close();
  }
}

async function create(databaseUrl: string, name: string): Promise<void> {
  const sql = await pendingSql(databaseUrl);
  if (sql === '') return console.log('prisma/schema.prisma matches the migrations: nothing to create');
  const folder = join(migrationsDir, `${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}_${name}`);
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, 'migration.sql'), sql);
  console.log(`wrote ${join(folder, 'migration.sql')}`);
}

async function check(databaseUrl: string): Promise<void> {
  const sql = await pendingSql(databaseUrl);
  if (sql !== '') {
    console.log(sql);
    throw new ConfigError([
      'prisma/schema.prisma has changes without a migration: run npm run db:migrate -- create <name>',
    ]);
  }
  console.log('prisma/schema.prisma matches the migrations');
}

runMain(main);
