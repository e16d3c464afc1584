// Short-lived signed tokens for SSE (a browser EventSource cannot send an Authorization header): a token
// names one team, one run and the key that asked for it, and expires. The API key itself never goes into a
// URL. The signing secret lives in Redis, so every API instance accepts every instance's tokens.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';

/** How long a token may be used to open a stream (an open stream outlives it; its key is re-checked). */
export const STREAM_TOKEN_TTL_MS = 5 * 60_000;

export interface StreamGrant {
  teamId: string;
  runId: string;
  keyId: string;
  /** Epoch ms after which the token opens nothing. */
  expiresAt: number;
}

export interface StreamTokens {
  issue(grant: Omit<StreamGrant, 'expiresAt'>, ttlMs?: number): Promise<{ token: string; expiresAt: Date }>;
  /** The grant of a valid token for `runId`; otherwise an Error saying why (expired, another run, forged). */
  verify(token: string, runId: string): Promise<StreamGrant>;
}

const sign = (secret: Buffer, payload: string) =>
  createHmac('sha256', secret).update(payload).digest('base64url');

function isGrant(value: unknown): value is StreamGrant {
  const g = value as StreamGrant | null;
  return (
    typeof g === 'object' &&
    g !== null &&
    typeof g.teamId === 'string' &&
    typeof g.runId === 'string' &&
    typeof g.keyId === 'string' &&
    Number.isFinite(g.expiresAt)
  );
}

export function createStreamTokens(redis: Redis, prefix: string, now: () => number = Date.now): StreamTokens {
  const secretKey = `${prefix}:api:stream-token-secret`;
  let secret: Promise<Buffer> | undefined;
  // The first instance to ask sets it; a Redis without the key (wiped) gets a new one, voiding old tokens.
  const secretOf = (): Promise<Buffer> => {
    secret ??= (async () => {
      await redis.set(secretKey, randomBytes(32).toString('base64url'), 'NX');
      const value = await redis.get(secretKey);
      if (value === null) throw new Error('stream token secret missing from Redis');
      return Buffer.from(value, 'base64url');
    })();
    secret.catch(() => {
      secret = undefined; // Redis was away: ask again next time
    });
    return secret;
  };
  return {
    async issue(grant, ttlMs = STREAM_TOKEN_TTL_MS) {
      const expiresAt = now() + ttlMs;
      const payload = Buffer.from(JSON.stringify({ ...grant, expiresAt })).toString('base64url');
      return { token: `${payload}.${sign(await secretOf(), payload)}`, expiresAt: new Date(expiresAt) };
    },
    async verify(token, runId) {
      const [payload, signature, extra] = token.split('.');
      if (!payload || !signature || extra !== undefined) throw new Error('malformed stream token');
      const expected = Buffer.from(sign(await secretOf(), payload));
      const given = Buffer.from(signature);
      if (expected.length !== given.length || !timingSafeEqual(expected, given))
        throw new Error('invalid stream token');
      let grant: unknown;
      try {
        grant = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      } catch {
        throw new Error('malformed stream token');
      }
      if (!isGrant(grant)) throw new Error('malformed stream token');
      if (grant.runId !== runId) throw new Error('the stream token is for another run');
      if (grant.expiresAt <= now()) throw new Error('the stream token expired; ask for a new one');
      return grant;
    },
  };
}
