// A finished eval stage of a run becomes one of the team's evaluations, so the leaderboard and the evaluation pages
// read its comparison like a standalone evaluation's.
import type { EvalConfig, EvaluationResult } from '@rlhf/contracts';
import type { Prisma, PrismaClient, Stage as StageRow } from '@rlhf/db';

/**
 * A finished eval stage as one of the team's evaluations (id = the stage's), so the leaderboard and the evaluation
 * pages read it like a standalone one. A comparison of a model with itself (same name) rates nothing.
 */
export async function recordEvalStage(
  prisma: PrismaClient,
  readText: (key: string) => Promise<string>,
  stage: Pick<StageRow, 'id' | 'runId' | 'config' | 'datasetId'> & { run: { teamId: string } },
  modelKey: string,
  at: Date,
): Promise<void> {
  const resultKey = `${modelKey}/evaluation.json`;
  // Postgres cannot store U+0000 (an untrained byte-level model emits it): U+FFFD instead, as evaluations do.
  const result = JSON.parse((await readText(resultKey)).replaceAll('\\u0000', '\\ufffd')) as EvaluationResult;
  const [pair] = result.pairs;
  const config = stage.config as unknown as EvalConfig;
  const self = pair.a === pair.b;
  const stored: EvaluationResult = self ? { ...result, comparisons: [] } : result;
  const spec = {
    name: `${pair.a} vs ${pair.b}`,
    run: { runId: stage.runId, stageId: stage.id },
    datasetId: stage.datasetId,
    maxPrompts: config.maxPrompts,
    seeds: config.seeds,
    againstSeeds: config.againstSeeds,
    sampling: {
      maxNewTokens: config.maxNewTokens,
      temperature: config.temperature,
      topK: config.topK,
      topP: config.topP,
    },
    judge: config.judge,
  };
  await prisma.evaluation.createMany({
    data: [
      {
        id: stage.id,
        teamId: stage.run.teamId,
        name: spec.name,
        spec: spec as unknown as Prisma.InputJsonObject,
        models: [
          { name: pair.a, key: null },
          { name: pair.b, key: null },
        ] as unknown as Prisma.InputJsonArray,
        status: 'succeeded',
        resultKey,
        result: stored as unknown as Prisma.InputJsonObject,
        finishedAt: at,
      },
    ],
    skipDuplicates: true,
  });
}
