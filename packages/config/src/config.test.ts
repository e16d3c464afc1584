import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { DEFAULT_ARTIFACT_DIR, loadApiConfig, loadWorkerConfig, REPO_ROOT } from './config.js';
import { ConfigError } from './errors.js';

function problems(load: () => unknown): string[] {
  try {
    load();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadApiConfig', () => {
  test('reads every variable', () => {
    const config = loadApiConfig({
      DATABASE_URL: 'postgresql://rlhf:pw@db:5432/rlhf',
      REDIS_URL: 'redis://cache:6379',
      ARTIFACT_DIR: '/data/artifacts',
      PORT: '8080',
      HOST: '0.0.0.0',
      ADMIN_KEY: 'a'.repeat(32),
      LOG_LEVEL: 'debug',
      MODEL_DIRS: '/mnt/models/qwen3-0.6b, /mnt/models/llama',
    });
    expect(config).toEqual({
      databaseUrl: 'postgresql://rlhf:pw@db:5432/rlhf',
      redisUrl: 'redis://cache:6379',
      artifactDir: '/data/artifacts',
      redisPrefix: undefined,
      port: 8080,
      host: '0.0.0.0',
      adminKey: 'a'.repeat(32),
      logLevel: 'debug',
      modelDirs: ['/mnt/models/qwen3-0.6b', '/mnt/models/llama'],
    });
  });

  test('fills in defaults for everything but the database', () => {
    const config = loadApiConfig({ DATABASE_URL: 'postgres://localhost/rlhf', PORT: '' });
    expect(config).toEqual({
      databaseUrl: 'postgres://localhost/rlhf',
      redisUrl: 'redis://127.0.0.1:6379',
      artifactDir: join(REPO_ROOT, '.artifacts'),
      port: 3000,
      host: '127.0.0.1',
      adminKey: undefined,
      logLevel: 'info',
      modelDirs: [],
    });
  });

  test('MODEL_DIRS must be absolute paths', () => {
    expect(
      problems(() => loadApiConfig({ DATABASE_URL: 'postgres://h/db', MODEL_DIRS: '/a,models/b' })),
    ).toEqual(['MODEL_DIRS: expected comma-separated absolute paths, got "models/b"']);
  });

  test('reports every bad variable at once, one line each, naming it', () => {
    const found = problems(() =>
      loadApiConfig({ REDIS_URL: 'http://cache:6379', PORT: '80a', LOG_LEVEL: 'loud', ADMIN_KEY: 'short' }),
    );
    expect(found).toEqual([
      'DATABASE_URL: required, e.g. postgresql://host:port',
      'REDIS_URL: expected redis://host:port, got http://cache:6379',
      'PORT: expected a port number 0-65535, got "80a"',
      'ADMIN_KEY: must be at least 24 characters long',
      'LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    ]);
    for (const line of found) expect(line).not.toContain('\n');
  });

  test('never echoes a password from a malformed URL', () => {
    const [problem] = problems(() => loadApiConfig({ DATABASE_URL: 'mysql://root:hunter2@db/rlhf' }));
    expect(problem).toBe('DATABASE_URL: expected postgresql://host:port, got mysql://root:***@db/rlhf');
  });

  test('the error message lists the problems under one heading', () => {
    expect(() => loadApiConfig({ DATABASE_URL: 'not a url' })).toThrow(
      'invalid configuration:\n  DATABASE_URL: not a URL (expected postgresql://host:port)',
    );
  });
});

describe('ARTIFACT_DIR', () => {
  test('the default is <repo root>/.artifacts, found from the package, not from the working directory', () => {
    expect(existsSync(join(REPO_ROOT, 'package-lock.json'))).toBe(true);
    expect(DEFAULT_ARTIFACT_DIR).toBe(join(REPO_ROOT, '.artifacts'));
    const elsewhere = process.cwd() === REPO_ROOT ? '/' : process.cwd();
    expect(elsewhere).not.toBe(REPO_ROOT);
    const env = { DATABASE_URL: 'postgres://localhost/rlhf' };
    expect(loadApiConfig(env).artifactDir).toBe(DEFAULT_ARTIFACT_DIR);
    expect(loadWorkerConfig({}).artifactDir).toBe(DEFAULT_ARTIFACT_DIR);
  });

  test('a relative value is taken from the repository root; API and worker agree', () => {
    const env = { DATABASE_URL: 'postgres://localhost/rlhf', ARTIFACT_DIR: 'shared/store' };
    const api = loadApiConfig(env).artifactDir;
    expect(api).toBe(join(REPO_ROOT, 'shared', 'store'));
    expect(isAbsolute(api)).toBe(true);
    expect(loadWorkerConfig(env).artifactDir).toBe(api);
    expect(loadWorkerConfig({ ARTIFACT_DIR: '/mnt/artifacts' }).artifactDir).toBe('/mnt/artifacts');
  });
});

describe('REDIS_PREFIX', () => {
  test('is read by both processes and refused when it is not a plain namespace', () => {
    expect(loadWorkerConfig({ REDIS_PREFIX: 'team-a' }).redisPrefix).toBe('team-a');
    expect(loadApiConfig({ DATABASE_URL: 'postgres://h/d', REDIS_PREFIX: 'x:y' }).redisPrefix).toBe('x:y');
    expect(problems(() => loadWorkerConfig({ REDIS_PREFIX: 'a b' }))).toEqual([
      'REDIS_PREFIX: expected letters, digits, _ . : - (at most 64), got "a b"',
    ]);
  });
});

describe('loadWorkerConfig', () => {
  test('needs no database and accepts cuda devices', () => {
    const config = loadWorkerConfig({ DEVICE: 'cuda:1', WORKER_ID: 'gpu-1', ARTIFACT_DIR: 'store' });
    expect(config).toEqual({
      redisUrl: 'redis://127.0.0.1:6379',
      artifactDir: join(REPO_ROOT, 'store'),
      device: 'cuda:1',
      workerId: 'gpu-1',
      logLevel: 'info',
    });
    expect(Object.keys(config)).not.toContain('databaseUrl');
  });

  test('rejects an unknown device and a bad Redis URL', () => {
    expect(problems(() => loadWorkerConfig({ DEVICE: 'tpu', REDIS_URL: 'redis//x' }))).toEqual([
      'REDIS_URL: not a URL (expected redis://host:port)',
      'DEVICE: expected cpu, cuda or cuda:N, got "tpu"',
    ]);
  });
});
