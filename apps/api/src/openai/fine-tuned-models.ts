// The fine-tuned models of a team: its succeeded fine-tuning jobs, named ft:<base>:<team>:<suffix>:<run id>
// (jobs.ts fineTunedModel), and its succeeded runs whose last stage trained an adapter (LoRA, prompt tuning), named
// ft:<base>:<team>::<run id> (the inference worker serves their final/adapter/ on the loaded base, unmerged), as
// OpenAI model objects; the model a chat request names is looked up here too.
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

type FineTunedRun = Parameters<typeof fineTunedModel>[1] & { registeredModel: { name: string } | null };

/** A run not made by the fine-tuning API whose last stage has `config.lora` or `promptTuning`: an adapter + base. */
const isAdapterRun = (run: FineTunedRun) => {
  const config = run.stages.at(-1)?.config;
  return (
    run.fineTuning === null &&
    typeof config === 'object' &&
    config !== null &&
    ('lora' in config || 'promptTuning' in config)
  );
};

const idOf = (team: Team, run: FineTunedRun) =>
  run.fineTuning === null
    ? `ft:${run.modelPreset ?? run.registeredModel?.name ?? 'run'}:${team.name}::${run.id}`
    : fineTunedModel(team, run);

const include = {
  stages: { orderBy: { index: 'asc' as const } },
  registeredModel: { select: { name: true } },
};

const objectOf = (team: Team, run: FineTunedRun): FineTunedModelObject => ({
  id: idOf(team, run),
  object: 'model',
  created: Math.floor((run.finishedAt ?? run.createdAt).getTime() / 1000),
  owned_by: team.id,
});

export async function listFineTunedModels(s: Services, team: Team): Promise<FineTunedModelObject[]> {
  const [jobs, others] = await Promise.all(
    [
      fineTunedWhere(team),
      { teamId: team.id, status: 'succeeded' as const, fineTuning: { equals: Prisma.DbNull } },
    ].map((where) => s.prisma.run.findMany({ where, include, orderBy: { id: 'desc' }, take: LISTED })),
  );
  return [...jobs, ...others.filter(isAdapterRun)]
    .sort((a, b) => (a.id < b.id ? 1 : -1))
    .slice(0, LISTED)
    .map((run) => objectOf(team, run));
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
    where: { teamId: team.id, status: 'succeeded', id: runId },
    include,
  });
  if (!run || (run.fineTuning === null && !isAdapterRun(run)) || idOf(team, run) !== id) return null;
  return { model: objectOf(team, run), key: run.stages.at(-1)?.modelKey ?? null };
}
