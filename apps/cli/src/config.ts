// Where the CLI finds its API: flags, then RLHF_URL / RLHF_API_KEY, then the file `rlhf login` wrote
// ($XDG_CONFIG_HOME/rlhf/config.json or ~/.config/rlhf/config.json, mode 0600: it holds a secret).
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { UsageError } from './args.js';
import type { Io } from './io.js';

export interface Login {
  url: string;
  key: string;
}

export function configPath(env: Io['env']): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(base, 'rlhf', 'config.json');
}

/** The stored login, or an empty one when there is no file. */
export async function readLogin(env: Io['env']): Promise<Partial<Login>> {
  const path = configPath(env);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw error;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError(`${path} is not JSON: run rlhf login again`);
  }
  const record = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  return {
    ...(typeof record.url === 'string' ? { url: record.url } : {}),
    ...(typeof record.key === 'string' ? { key: record.key } : {}),
  };
}

/** Writes the login readable by its owner only (written to a temporary file first, then renamed). */
export async function writeLogin(env: Io['env'], login: Login): Promise<string> {
  const path = configPath(env);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(login, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600); // the umask could have narrowed it, never widened; set it exactly
  await rename(tmp, path);
  return path;
}

/** Flags over environment over the stored login. */
export async function resolveLogin(
  env: Io['env'],
  flags: { url?: string | undefined; key?: string | undefined },
): Promise<Login> {
  const stored = await readLogin(env);
  const url = flags.url ?? env.RLHF_URL ?? stored.url;
  const key = flags.key ?? env.RLHF_API_KEY ?? stored.key;
  if (!url)
    throw new UsageError('no API URL: run `rlhf login --url URL --key KEY`, set RLHF_URL or pass --url');
  if (!key)
    throw new UsageError('no API key: run `rlhf login --url URL --key KEY`, set RLHF_API_KEY or pass --key');
  return { url: normalizeUrl(url), key };
}

/** An http(s) URL without a trailing slash. */
export function normalizeUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`not a URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new UsageError(`not an http(s) URL: ${JSON.stringify(url)}`);
  return parsed.toString().replace(/\/+$/, '');
}
