// Bearer API keys. A key is `rlhf_<12 hex>_<43 base64url>`: its first part is a unique lookup prefix;
// the database keeps the prefix and the sha256 of the whole key, never the key itself.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { PrismaClient, Team } from '@rlhf/db';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ApiError } from './errors.js';
import type { StreamTokens } from './stream-tokens.js';

export interface NewApiKey {
  key: string;
  prefix: string;
  sha256: string;
}

export const hashKey = (key: string): string => createHash('sha256').update(key).digest('hex');

export function generateApiKey(): NewApiKey {
  const prefix = `rlhf_${randomBytes(6).toString('hex')}`;
  const key = `${prefix}_${randomBytes(32).toString('base64url')}`;
  return { key, prefix, sha256: hashKey(key) };
}

const KEY_PATTERN = /^(rlhf_[0-9a-f]{12})_[A-Za-z0-9_-]{43}$/;

/** Who is calling: a team key (team set), an admin key (isAdmin), or both. */
export interface Principal {
  /** null for the bootstrap ADMIN_KEY of the environment. */
  keyId: string | null;
  isAdmin: boolean;
  team: Team | null;
}

function sameSecret(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

// lastUsedAt is informational: written at most once a minute per key.
const LAST_USED_EVERY_MS = 60_000;

/** The principal a key belongs to, or null for an unknown, malformed or revoked key. */
export async function authenticate(
  prisma: PrismaClient,
  adminKey: string | undefined,
  key: string,
  guard?: FailedAuthGuard,
  verified?: KeyCache,
): Promise<Principal | null> {
  if (adminKey !== undefined && sameSecret(key, adminKey)) return { keyId: null, isAdmin: true, team: null };
  const prefix = KEY_PATTERN.exec(key)?.[1];
  if (prefix === undefined) return null;
  const sha256 = hashKey(key);
  if (guard?.knownBad(sha256)) return null; // refused a moment ago: no database lookup
  const principal = await (verified
    ? verified.lookup(sha256, () => lookUp(prisma, prefix, sha256))
    : lookUp(prisma, prefix, sha256));
  if (!principal) guard?.rememberBad(sha256);
  return principal;
}

async function lookUp(prisma: PrismaClient, prefix: string, sha256: string): Promise<Principal | null> {
  const record = await prisma.apiKey.findUnique({ where: { prefix }, include: { team: true } });
  if (!record || record.revokedAt !== null || !sameSecret(sha256, record.sha256)) return null;
  if (record.lastUsedAt === null || Date.now() - record.lastUsedAt.getTime() > LAST_USED_EVERY_MS) {
    prisma.apiKey.update({ where: { id: record.id }, data: { lastUsedAt: new Date() } }).catch(() => {}); // a failed timestamp write must not fail the request
  }
  return { keyId: record.id, isAdmin: record.isAdmin, team: record.team };
}

/**
 * Principals of keys verified a moment ago, by the key's sha256, bounded in memory: a client's requests
 * within `ttlMs` cost no database lookup. Whoever revokes a key or changes a team's limits in this process
 * clears it (the change applies at once); another API process sees it within `ttlMs`.
 */
export interface KeyCache {
  /** The principal of a key verified within the TTL, else `load`'s (one load at a time per key; null is not kept). */
  lookup(sha256: string, load: () => Promise<Principal | null>): Promise<Principal | null>;
  /** Forgets every key, and what lookups in flight will find. */
  clear(): void;
}

/** How long a verified key is trusted without a lookup (default of ApiOptions.keyCacheMs). */
export const KEY_CACHE_MS = 2_000;

export function createKeyCache(ttlMs: number = KEY_CACHE_MS): KeyCache {
  const entries = new Map<string, { principal: Principal; until: number }>();
  const loading = new Map<string, Promise<Principal | null>>();
  let generation = 0; // a lookup started before a clear() must not put back what it read
  return {
    lookup(sha256, load) {
      const entry = entries.get(sha256);
      if (entry !== undefined && entry.until > Date.now()) return Promise.resolve(entry.principal);
      entries.delete(sha256);
      const inFlight = loading.get(sha256);
      if (inFlight) return inFlight;
      const started = generation;
      const promise = load().finally(() => {
        if (loading.get(sha256) === promise) loading.delete(sha256);
      });
      loading.set(sha256, promise);
      promise.then(
        (principal) => {
          if (principal === null || ttlMs <= 0 || generation !== started) return;
          entries.set(sha256, { principal, until: Date.now() + ttlMs });
          while (entries.size > GUARD_ENTRIES) entries.delete(entries.keys().next().value as string);
        },
        () => {},
      );
      return promise;
    },
    clear() {
      generation++;
      entries.clear();
      loading.clear();
    },
  };
}

/** Limits on failed authentication (per client address, per API process). */
export interface FailedAuthLimits {
  /** Failed authentications an address may make per window before it gets 429 (default 30). */
  max?: number;
  /** Window of `max` (default 60 s). */
  windowMs?: number;
  /** How long a refused key is answered 401 without a database lookup (default 60 s). */
  badKeyTtlMs?: number;
}

/**
 * Failed authentications by client address, and a short negative cache of refused keys (their sha256),
 * both bounded in memory. Unknown or revoked keys cost at most one database lookup each per
 * `badKeyTtlMs`, and an address that keeps failing is refused (429) before any lookup until its window ends.
 */
export interface FailedAuthGuard {
  /** Milliseconds until `address` may try again, or 0 when it is not blocked. */
  blockedFor(address: string): number;
  /** Counts a failure of `address`. */
  failed(address: string): void;
  knownBad(sha256: string): boolean;
  rememberBad(sha256: string): void;
}

/** Entries each map keeps at most (the oldest go first): memory stays bounded under any key or address spray. */
const GUARD_ENTRIES = 10_000;

export function createFailedAuthGuard(limits: FailedAuthLimits = {}): FailedAuthGuard {
  const max = limits.max ?? 30;
  const windowMs = limits.windowMs ?? 60_000;
  const badKeyTtlMs = limits.badKeyTtlMs ?? 60_000;
  const failures = new Map<string, { count: number; resetAt: number }>();
  const badKeys = new Map<string, number>();
  const bounded = <V>(map: Map<string, V>) => {
    while (map.size > GUARD_ENTRIES) map.delete(map.keys().next().value as string);
  };
  return {
    blockedFor(address) {
      const entry = failures.get(address);
      if (!entry) return 0;
      const left = entry.resetAt - Date.now();
      if (left <= 0) {
        failures.delete(address);
        return 0;
      }
      return entry.count >= max ? left : 0;
    },
    failed(address) {
      const now = Date.now();
      const entry = failures.get(address);
      if (!entry || entry.resetAt <= now) {
        failures.delete(address);
        failures.set(address, { count: 1, resetAt: now + windowMs });
        bounded(failures);
      } else entry.count++;
    },
    knownBad(sha256) {
      const until = badKeys.get(sha256);
      if (until === undefined) return false;
      if (until > Date.now()) return true;
      badKeys.delete(sha256);
      return false;
    },
    rememberBad(sha256) {
      badKeys.delete(sha256);
      badKeys.set(sha256, Date.now() + badKeyTtlMs);
      bounded(badKeys);
    },
  };
}

/** `Bearer <key>`, or the password of `Basic` credentials (browsers prompt for those: bull-board). */
export function credentialOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const [scheme, value] = header.trim().split(/\s+/, 2);
  if (value === undefined) return undefined;
  if (/^bearer$/i.test(scheme)) return value;
  if (/^basic$/i.test(scheme)) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon === -1 ? undefined : decoded.slice(colon + 1);
  }
  return undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** The route also accepts `?token=` from POST /v1/runs/:runId/stream-token (SSE from a browser). */
    streamToken?: boolean;
  }
}

/** The principal of a stream token for the route's run, or a 401 message. */
async function streamPrincipal(
  prisma: PrismaClient,
  tokens: StreamTokens,
  request: FastifyRequest,
): Promise<Principal | string> {
  const token = (request.query as { token?: unknown } | undefined)?.token;
  const runId = (request.params as { runId?: unknown } | undefined)?.runId;
  if (typeof token !== 'string' || typeof runId !== 'string') return 'missing stream token';
  let grant: Awaited<ReturnType<StreamTokens['verify']>>;
  try {
    grant = await tokens.verify(token, runId);
  } catch (error) {
    return (error as Error).message;
  }
  const key = await prisma.apiKey.findUnique({ where: { id: grant.keyId }, include: { team: true } });
  if (!key || key.revokedAt !== null || key.teamId !== grant.teamId)
    return 'the key that issued the stream token was revoked';
  return { keyId: key.id, isAdmin: key.isAdmin, team: key.team };
}

export interface AuthOptions {
  prisma: PrismaClient;
  adminKey: string | undefined;
  /** Failed authentications per address and refused keys (shared by every scope of the app). */
  guard: FailedAuthGuard;
  /** Keys verified a moment ago (shared by every scope of the app); none: every request is looked up. */
  verified?: KeyCache;
  /** Stream tokens, accepted (as `?token=`) on routes whose config sets `streamToken`. */
  streamTokens?: StreamTokens;
  /** Ask browsers for credentials on 401 (bull-board). */
  basicRealm?: string;
}

/** Rejects requests without a valid key (401) and sets `request.principal` for the scope it is registered in. */
export const authentication = fp<AuthOptions>(async (app: FastifyInstance, options) => {
  if (!app.hasRequestDecorator('principal')) app.decorateRequest('principal', null);
  // Replies are sent here rather than thrown: a scope below may have its own error handler (bull-board).
  app.addHook('onRequest', async (request, reply) => {
    const key = credentialOf(request.headers.authorization);
    const { guard } = options;
    // An address over its failed-authentication limit is refused before any lookup (the bootstrap
    // admin key, compared in memory, still works).
    const blockedMs = key === undefined ? 0 : guard.blockedFor(request.ip);
    if (blockedMs > 0 && !(options.adminKey !== undefined && sameSecret(key as string, options.adminKey))) {
      const seconds = Math.ceil(blockedMs / 1000);
      return reply
        .status(429)
        .header('retry-after', String(seconds))
        .send({
          error: {
            code: 'rate_limited',
            message: `too many failed authentications from this address; retry in ${seconds} s`,
          },
        });
    }
    if (key === undefined && options.streamTokens && request.routeOptions.config.streamToken) {
      const query = request.query as { token?: unknown } | undefined;
      if (query?.token !== undefined) {
        const found = await streamPrincipal(options.prisma, options.streamTokens, request);
        if (typeof found !== 'string') {
          request.principal = found;
          return;
        }
        guard.failed(request.ip);
        return reply.status(401).send({ error: { code: 'unauthorized', message: found } });
      }
    }
    const principal =
      key === undefined
        ? null
        : await authenticate(options.prisma, options.adminKey, key, guard, options.verified);
    if (principal) {
      request.principal = principal;
      return;
    }
    if (key !== undefined) guard.failed(request.ip);
    if (options.basicRealm) reply.header('www-authenticate', `Basic realm="${options.basicRealm}"`);
    const message =
      key === undefined
        ? 'missing API key: send the header "Authorization: Bearer <key>"'
        : 'invalid or revoked API key';
    return reply.status(401).send({ error: { code: 'unauthorized', message } });
  });
});

/** The caller's team; 403 for admin keys without one (they manage teams, they own no runs). */
export function teamOf(request: FastifyRequest): Team {
  const team = request.principal?.team;
  if (!team) throw new ApiError(403, 'forbidden', 'this route needs a team API key; admin keys manage teams');
  return team;
}

/** onRequest hook for admin-only scopes (after `authentication`). */
export async function requireAdmin(
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply | undefined> {
  if (request.principal?.isAdmin) return;
  return reply.status(403).send({ error: { code: 'forbidden', message: 'this route needs an admin key' } });
}
