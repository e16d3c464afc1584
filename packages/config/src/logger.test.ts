import { Writable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { createLogger, redactUrl } from './logger.js';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { stream, lines };
}

describe('redactUrl', () => {
  test('hides the password and keeps the rest', () => {
    expect(redactUrl('postgresql://rlhf:s3cret@db:5432/rlhf?sslmode=require')).toBe(
      'postgresql://rlhf:***@db:5432/rlhf?sslmode=require',
    );
    expect(redactUrl('redis://:s3cret@cache:6379/0')).toBe('redis://:***@cache:6379/0');
  });

  test('leaves URLs without a password and non-URLs alone', () => {
    expect(redactUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(redactUrl('not a url')).toBe('not a url');
  });
});

describe('createLogger', () => {
  test('writes JSON lines with the name and drops messages below the level', () => {
    const { stream, lines } = capture();
    const logger = createLogger('api', 'info', stream);
    logger.debug('hidden');
    logger.info({ runId: 'r1' }, 'run queued');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toMatchObject({ name: 'api', msg: 'run queued', runId: 'r1', level: 30 });
  });

  test('redacts authorization headers, keys and URL passwords', () => {
    const { stream, lines } = capture();
    const logger = createLogger('api', 'info', stream);
    logger.info({
      req: {
        method: 'GET',
        headers: { authorization: 'Bearer rlhf_live_secret1', 'x-api-key': 'rlhf_live_secret2' },
      },
      apiKey: 'rlhf_live_secret3',
      config: { databaseUrl: 'postgresql://rlhf:secret4@db/rlhf', adminKey: 'secret5', port: 3000 },
      redisUrl: 'redis://:secret6@cache:6379',
    });
    const line = lines[0];
    for (const secret of ['secret1', 'secret2', 'secret3', 'secret4', 'secret5', 'secret6']) {
      expect(line).not.toContain(secret);
    }
    const entry = JSON.parse(line);
    expect(entry.req.headers.authorization).toBe('[redacted]');
    expect(entry.req.method).toBe('GET');
    expect(entry.config.databaseUrl).toBe('postgresql://rlhf:***@db/rlhf');
    expect(entry.config.port).toBe(3000);
    expect(entry.redisUrl).toBe('redis://:***@cache:6379');
  });
});
