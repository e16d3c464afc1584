// Start-up probes: fail fast with one line that names the variable to fix and the host it points at.
import { randomUUID } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { StartupError, UnreachableError } from './errors.js';

const DEFAULT_TIMEOUT_MS = 3000;

/** Connects to Redis and PINGs it; throws UnreachableError naming `variable` on failure. */
export async function checkRedis(
  url: string,
  variable = 'REDIS_URL',
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<void> {
  const host = hostOf(url, 6379);
  let firstError: unknown;
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  // ioredis reports the socket error as an event and rejects connect() with a generic one.
  redis.on('error', (error) => {
    firstError ??= error;
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw new UnreachableError(
      variable,
      host,
      `${variable}: cannot reach Redis at ${host} (${reason(firstError ?? error)})`,
    );
  } finally {
    redis.disconnect();
  }
}

/** Connects to PostgreSQL and runs `SELECT 1`; throws UnreachableError naming `variable` on failure. */
export async function checkPostgres(
  url: string,
  variable = 'DATABASE_URL',
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<void> {
  const host = hostOf(url, 5432);
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  // A server that drops the connection later emits 'error'; without a listener that would crash.
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    throw new UnreachableError(
      variable,
      host,
      `${variable}: cannot reach PostgreSQL at ${host} (${reason(error)})`,
    );
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Creates the artifact directory if needed and writes (then removes) a probe file in it; throws a
 * StartupError naming `variable` when the directory cannot be written.
 */
export async function checkArtifactDir(dir: string, variable = 'ARTIFACT_DIR'): Promise<void> {
  // A dot file: the store never lists hidden files, so a probe left by a crash is never an artifact.
  const probe = join(dir, `.write-check-${randomUUID()}`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(probe, '');
  } catch (error) {
    throw new StartupError(
      `${variable}: cannot write to ${dir} (${reason(error)}); API and workers need one shared, writable directory`,
    );
  }
  await rm(probe, { force: true });
}

function hostOf(url: string, defaultPort: number): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || defaultPort}`;
  } catch {
    return 'an unparseable URL';
  }
}

// The shortest useful cause: a system error code (ECONNREFUSED), a server error code with its text
// (3D000: database "x" does not exist), or the first line of the message.
function reason(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const firstLine = error.message.split('\n')[0];
  if (typeof code !== 'string') return firstLine || error.name;
  if (/^E[A-Z]+$/.test(code)) return code;
  return `${code}: ${firstLine}`;
}
