// Environment variables of the two processes, validated at start-up. Problems are collected so the
// user fixes them all in one go.
import { hostname } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from './errors.js';
import { redactUrl } from './logger.js';

export type Env = Record<string, string | undefined>;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ApiConfig {
  databaseUrl: string;
  redisUrl: string;
  /** Absolute path of the artifact store (datasets, checkpoints, exports). */
  artifactDir: string;
  /** Namespace of every Redis key (queues, events stream); the workers must use the same one. */
  redisPrefix: string | undefined;
  port: number;
  host: string;
  /** Bootstrap admin key; when unset, admin endpoints accept only admin keys stored in the database. */
  adminKey: string | undefined;
  logLevel: LogLevel;
  /** MODEL_DIRS: absolute paths of read-only HF model directories on shared storage, registered as admin models. */
  modelDirs: string[];
}

/** Workers get Redis and the artifact store only, never database credentials. */
export interface WorkerConfig {
  redisUrl: string;
  artifactDir: string;
  redisPrefix: string | undefined;
  /** `cpu`, `cuda` or `cuda:N`. */
  device: string;
  workerId: string;
  logLevel: LogLevel;
}

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** The repository (or installed app) root, found from this file's place, never from the working directory. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url)).replace(/[/\\]$/, '');
/** API and workers share this store unless ARTIFACT_DIR says otherwise. */
export const DEFAULT_ARTIFACT_DIR = join(REPO_ROOT, '.artifacts');

/**
 * ARTIFACT_DIR as an absolute path: a relative value is taken from the repository root, so processes
 * started from different folders (`npm start -w ...` runs in the workspace folder) share one store.
 */
export const resolveArtifactDir = (value: string | undefined): string =>
  value === undefined ? DEFAULT_ARTIFACT_DIR : resolve(REPO_ROOT, value);

const PREFIX_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
const MIN_ADMIN_KEY_LENGTH = 24;

export function loadApiConfig(env: Env = process.env): ApiConfig {
  const read = new EnvReader(env);
  const config: ApiConfig = {
    databaseUrl: read.url('DATABASE_URL', ['postgresql:', 'postgres:'], undefined),
    redisUrl: read.url('REDIS_URL', ['redis:', 'rediss:'], DEFAULT_REDIS_URL),
    artifactDir: resolveArtifactDir(read.optional('ARTIFACT_DIR')),
    redisPrefix: read.optionalMatching(
      'REDIS_PREFIX',
      PREFIX_PATTERN,
      'letters, digits, _ . : - (at most 64)',
    ),
    port: read.port('PORT', 3000),
    host: read.string('HOST', '127.0.0.1'),
    adminKey: read.secret('ADMIN_KEY', MIN_ADMIN_KEY_LENGTH),
    logLevel: read.oneOf('LOG_LEVEL', LOG_LEVELS, 'info'),
    modelDirs: read.absolutePaths('MODEL_DIRS'),
  };
  read.finish();
  return config;
}

export function loadWorkerConfig(env: Env = process.env): WorkerConfig {
  const read = new EnvReader(env);
  const config: WorkerConfig = {
    redisUrl: read.url('REDIS_URL', ['redis:', 'rediss:'], DEFAULT_REDIS_URL),
    artifactDir: resolveArtifactDir(read.optional('ARTIFACT_DIR')),
    redisPrefix: read.optionalMatching(
      'REDIS_PREFIX',
      PREFIX_PATTERN,
      'letters, digits, _ . : - (at most 64)',
    ),
    device: read.matching('DEVICE', /^(cpu|cuda(:\d+)?)$/, 'cpu, cuda or cuda:N', 'cpu'),
    workerId: read.string('WORKER_ID', `${hostname()}-${process.pid}`),
    logLevel: read.oneOf('LOG_LEVEL', LOG_LEVELS, 'info'),
  };
  read.finish();
  return config;
}

// Reads variables, records one problem per bad variable and returns a placeholder so reading goes on.
class EnvReader {
  private readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  private raw(name: string): string | undefined {
    const value = this.env[name]?.trim();
    return value === '' ? undefined : value;
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  optional(name: string): string | undefined {
    return this.raw(name);
  }

  optionalMatching(name: string, pattern: RegExp, expected: string): string | undefined {
    const value = this.raw(name);
    if (value !== undefined && !pattern.test(value))
      return this.problem(`${name}: expected ${expected}, got "${value}"`, undefined);
    return value;
  }

  url(name: string, protocols: string[], fallback: string | undefined): string {
    const value = this.raw(name) ?? fallback;
    const example = `${protocols[0]}//host:port`;
    if (value === undefined) return this.problem(`${name}: required, e.g. ${example}`, '');
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return this.problem(`${name}: not a URL (expected ${example})`, '');
    }
    if (!protocols.includes(url.protocol) || url.hostname === '') {
      return this.problem(`${name}: expected ${example}, got ${redactUrl(value)}`, '');
    }
    return value;
  }

  port(name: string, fallback: number): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const port = Number(value);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      return this.problem(`${name}: expected a port number 0-65535, got "${value}"`, fallback);
    }
    return port;
  }

  oneOf<T extends string>(name: string, choices: readonly T[], fallback: T): T {
    const value = this.raw(name) ?? fallback;
    const choice = choices.find((candidate) => candidate === value);
    if (choice === undefined) {
      return this.problem(`${name}: expected one of ${choices.join(', ')}, got "${value}"`, fallback);
    }
    return choice;
  }

  matching(name: string, pattern: RegExp, expected: string, fallback: string): string {
    const value = this.raw(name) ?? fallback;
    if (!pattern.test(value)) return this.problem(`${name}: expected ${expected}, got "${value}"`, fallback);
    return value;
  }

  /** A comma-separated list of absolute paths (empty when unset). */
  absolutePaths(name: string): string[] {
    const paths = (this.raw(name) ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== '');
    const relative = paths.filter((p) => !isAbsolute(p));
    if (relative.length > 0)
      return this.problem(
        `${name}: expected comma-separated absolute paths, got "${relative.join(', ')}"`,
        [],
      );
    return paths;
  }

  secret(name: string, minLength: number): string | undefined {
    const value = this.raw(name);
    if (value !== undefined && value.length < minLength) {
      return this.problem(`${name}: must be at least ${minLength} characters long`, undefined);
    }
    return value;
  }

  private problem<T>(message: string, placeholder: T): T {
    this.problems.push(message);
    return placeholder;
  }

  finish(): void {
    if (this.problems.length > 0) throw new ConfigError(this.problems);
  }
}
