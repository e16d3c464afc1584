// The fine-tuned models of a team: its succeeded fine-tuning jobs, named ft:<base>:<team>:<suffix>:<run id>
// (jobs.ts fineTunedModel), as OpenAI model objects; the model a chat request names is looked up here too.
import { Prisma, type Team } from '@rlhf/db';
import type { Services } from '../services.js';
import { fineTunedModel } from './jobs.js';

/** Fine-tuned models listed at most (newest first). */
const LISTED = 500;

export const fineTunedWhere = (team: Team) => ({
  teamId: team.id,
  status: 'succeeded' as const,
  fineTuning: { not: Prisma.DbNull },
});

/** OpenAI's model object of a fine-tuned model. */
export interface FineTunedModelObject {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

const objectOf = (team: Team, run: Parameters<typeof fineTunedModel>[1]): FineTunedModelObject => ({
  id: fineTunedModel(team, run),
  object: 'model',
  created: Math.floor((run.finishedAt ?? run.createdAt).getTime() / 1000),
  owned_by: team.id,
});

export async function listFineTunedModels(s: Services, team: Team): Promise<FineTunedModelObject[]> {
  const runs = await s.prisma.run.findMany({
    where: fineTunedWhere(team),
    include: { stages: { orderBy: { index: 'asc' } } },
    orderBy: { id: 'desc' },
    take: LISTED,
  });
  return runs.map((run) => objectOf(team, run));
}

/** The team's fine-tuned model with exactly this id and its final model's key, or null (another team's too). */
export async function findFineTunedModel(
  s: Services,
  team: Team,
  id: string,
): Promise<{ model: FineTunedModelObject; key: string | null } | null> {
  const runId = id.split(':').at(-1) as string;
  if (!id.startsWith('ft:') || !/^[A-Za-z0-9_-]{1,64}$/.test(runId)) return null;
  const run = await s.prisma.run.findFirst({
    where: { ...fineTunedWhere(team), id: runId },
    include: { stages: { orderBy: { index: 'asc' } } },
  });
  if (!run || fineTunedModel(team, run) !== id) return null;
  return { model: objectOf(team, run), key: run.stages.at(-1)?.modelKey ?? null };
}
