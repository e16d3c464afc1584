import { resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadApiConfig, loadWorkerConfig } from './config.js';
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
    });
    expect(config).toEqual({
      databaseUrl: 'postgresql://rlhf:pw@db:5432/rlhf',
      redisUrl: 'redis://cache:6379',
      artifactDir: '/data/artifacts',
      port: 8080,
      host: '0.0.0.0',
      adminKey: 'a'.repeat(32),
      logLevel: 'debug',
    });
  });

  test('fills in defaults for everything but the database', () => {
    const config = loadApiConfig({ DATABASE_URL: 'postgres://localhost/rlhf', PORT: '' });
    expect(config).toEqual({
      databaseUrl: 'postgres://localhost/rlhf',
      redisUrl: 'redis://127.0.0.1:6379',
      artifactDir: resolve('.artifacts'),
      port: 3000,
      host: '127.0.0.1',
      adminKey: undefined,
      logLevel: 'info',
    });
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

describe('loadWorkerConfig', () => {
  test('needs no database and accepts cuda devices', () => {
    const config = loadWorkerConfig({ DEVICE: 'cuda:1', WORKER_ID: 'gpu-1', ARTIFACT_DIR: 'store' });
    expect(config).toEqual({
      redisUrl: 'redis://127.0.0.1:6379',
      artifactDir: resolve('store'),
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
