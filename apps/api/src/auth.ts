// Bearer API keys. A key is `rlhf_<12 hex>_<43 base64url>`: its first part is a unique lookup prefix;
// the database keeps the prefix and the sha256 of the whole key, never the key itself.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { PrismaClient, Team } from '@rlhf/db';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ApiError } from './errors.js';

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
): Promise<Principal | null> {
  if (adminKey !== undefined && sameSecret(key, adminKey)) return { keyId: null, isAdmin: true, team: null };
  const prefix = KEY_PATTERN.exec(key)?.[1];
  if (prefix === undefined) return null;
  const record = await prisma.apiKey.findUnique({ where: { prefix }, include: { team: true } });
  if (!record || record.revokedAt !== null || !sameSecret(hashKey(key), record.sha256)) return null;
  if (record.lastUsedAt === null || Date.now() - record.lastUsedAt.getTime() > LAST_USED_EVERY_MS) {
    prisma.apiKey.update({ where: { id: record.id }, data: { lastUsedAt: new Date() } }).catch(() => {}); // a failed timestamp write must not fail the request
  }
  return { keyId: record.id, isAdmin: record.isAdmin, team: record.team };
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
}

export interface AuthOptions {
  prisma: PrismaClient;
  adminKey: string | undefined;
  /** Ask browsers for credentials on 401 (bull-board). */
  basicRealm?: string;
}

/** Rejects requests without a valid key (401) and sets `request.principal` for the scope it is registered in. */
export const authentication = fp<AuthOptions>(async (app: FastifyInstance, options) => {
  if (!app.hasRequestDecorator('principal')) app.decorateRequest('principal', null);
  // Replies are sent here rather than thrown: a scope below may have its own error handler (bull-board).
  app.addHook('onRequest', async (request, reply) => {
    const key = credentialOf(request.headers.authorization);
    const principal = key === undefined ? null : await authenticate(options.prisma, options.adminKey, key);
    if (principal) {
      request.principal = principal;
      return;
    }
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
