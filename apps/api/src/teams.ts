// Teams and their keys: shared by the admin routes and the CLI (apps/api/src/cli.ts).
import { Prisma, type PrismaClient, type Team } from '@rlhf/db';
import { generateApiKey } from './auth.js';
import { ApiError } from './errors.js';

export interface TeamLimits {
  /** Runs of the team admitted to the queue at once (the admission quota). */
  maxActiveStages?: number;
  maxUploadBytes?: number;
  requestsPerMinute?: number;
}

export const isUniqueViolation = (error: unknown): boolean =>
  error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002';

export async function createTeam(prisma: PrismaClient, name: string, limits: TeamLimits = {}): Promise<Team> {
  try {
    return await prisma.team.create({ data: { name, ...limitsData(limits) } });
  } catch (error) {
    if (isUniqueViolation(error))
      throw new ApiError(409, 'conflict', `a team named "${name}" exists`, '/name');
    throw error;
  }
}

export async function updateTeam(prisma: PrismaClient, teamId: string, limits: TeamLimits): Promise<Team> {
  const found = await prisma.team.findUnique({ where: { id: teamId } });
  if (!found) throw new ApiError(404, 'not_found', `team ${teamId} not found`);
  return prisma.team.update({ where: { id: teamId }, data: limitsData(limits) });
}

function limitsData(limits: TeamLimits) {
  return {
    ...(limits.maxActiveStages === undefined ? {} : { maxActiveStages: limits.maxActiveStages }),
    ...(limits.maxUploadBytes === undefined ? {} : { maxUploadBytes: BigInt(limits.maxUploadBytes) }),
    ...(limits.requestsPerMinute === undefined ? {} : { requestsPerMinute: limits.requestsPerMinute }),
  };
}

/** Every team, by name. */
export async function listTeams(prisma: PrismaClient): Promise<Team[]> {
  return prisma.team.findMany({ orderBy: { name: 'asc' } });
}

/** A team by id (admin routes). */
export async function teamById(prisma: PrismaClient, teamId: string): Promise<Team | null> {
  return prisma.team.findUnique({ where: { id: teamId } });
}

/** A team by id or by name. */
export async function findTeam(prisma: PrismaClient, idOrName: string): Promise<Team | null> {
  return prisma.team.findFirst({ where: { OR: [{ id: idOrName }, { name: idOrName }] } });
}

export interface CreatedKey {
  id: string;
  /** The secret: shown once, only its sha256 is stored. */
  key: string;
  prefix: string;
  name: string;
  teamId: string | null;
  isAdmin: boolean;
  createdAt: Date;
}

/** A new key for a team (teamId) or an admin key (isAdmin, teamId null). */
export async function createApiKey(
  prisma: PrismaClient,
  options: { teamId: string | null; name: string; isAdmin?: boolean },
): Promise<CreatedKey> {
  if (options.teamId === null && !options.isAdmin)
    throw new Error('a key needs a team unless it is an admin key');
  const { key, prefix, sha256 } = generateApiKey();
  const record = await prisma.apiKey.create({
    data: { teamId: options.teamId, name: options.name, prefix, sha256, isAdmin: options.isAdmin ?? false },
  });
  return {
    id: record.id,
    key,
    prefix,
    name: record.name,
    teamId: record.teamId,
    isAdmin: record.isAdmin,
    createdAt: record.createdAt,
  };
}

/** Revokes a key (kept for the audit trail); false if there is no such key. */
export async function revokeApiKey(prisma: PrismaClient, keyId: string): Promise<boolean> {
  const { count } = await prisma.apiKey.updateMany({
    where: { id: keyId, revokedAt: null },
    data: { revokedAt: new Date() },
  });
  return count > 0;
}
