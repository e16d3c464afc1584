// A stage evaluates exactly every evalEvery steps (not rounded to its fused calls), and with keepBest its
// output is the best evaluation's weights while the last weights stay beside them (final/last/).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SftMetrics } from '@rlhf/contracts';
import { waitForRun } from '@rlhf/demo';
import { sortDigitsFiles } from '@rlhf/examples';
import { loadCheckpoint } from '@rlhf/model';
import { expect, test } from 'vitest';
import { sortDigitsTeam, useTrainingApi } from './worker-helpers.js';

const service = useTrainingApi('keep-best-worker');

test('evalEvery is exact; keepBest keeps the best held-out loss as the output and the last weights beside it', async () => {
  const { api } = service;
  const { client, upload } = await sortDigitsTeam(api);
  const sft = await upload('sft');
  // A high constant lr over-shoots now and then: the best evaluation is often not the last.
  const config = {
    maxSteps: 30,
    batchSize: 16,
    lr: 2e-2,
    schedule: 'constant',
    stepsPerCall: 8,
    evalEvery: 7,
    keepBest: { metric: 'eval/loss', mode: 'min' },
  };
  const preference = (
    await client.uploadDataset('pairs', 'preference', await readFile(sortDigitsFiles.preference, 'utf8'))
  ).id;
  // The reward model keeps its best held-out accuracy, with the reference statistics of those weights.
  const rmConfig = {
    maxSteps: 12,
    batchSize: 16,
    lr: 1e-3,
    stepsPerCall: 4,
    evalEvery: 4,
    keepBest: { metric: 'eval/accuracy', mode: 'max' },
  };
  const submitted = await client.createRun({
    model: { preset: 'tiny' },
    stages: [
      { kind: 'sft', datasetId: sft, config },
      { kind: 'reward_model', datasetId: preference, config: rmConfig },
    ],
  });
  const run = await waitForRun(client, submitted.id);
  expect(run.status).toBe('succeeded');
  const stage = await api.app.services.prisma.stage.findFirstOrThrow({
    where: { runId: run.id, kind: 'sft' },
  });
  const points = await api.app.services.prisma.metricPoint.findMany({
    where: { stageId: stage.id, name: SftMetrics.evalLoss },
    orderBy: { step: 'asc' },
  });
  expect(points.map((p) => p.step)).toEqual([0, 7, 14, 21, 28, 30]);
  const losses = new Map(points.map((p) => [p.step, p.value]));
  const trained = points.filter((p) => p.step > 0);
  const bestPoint = trained.reduce((a, p) => (p.value < a.value ? p : a));

  const resolved = stage.resolved as { best?: { step: number; metric: string; value: number } };
  expect(resolved.best).toEqual({
    step: bestPoint.step,
    metric: 'eval/loss',
    value: losses.get(bestPoint.step),
  });
  const dir = join(api.artifactDir, stage.modelKey as string);
  const kept = await loadCheckpoint(dir);
  const last = await loadCheckpoint(join(dir, 'last'));
  expect(kept.config).toEqual(last.config);
  if (bestPoint.step !== 30) expect(kept.params.get('wte.weight')).not.toEqual(last.params.get('wte.weight'));

  const rm = await api.app.services.prisma.stage.findFirstOrThrow({
    where: { runId: run.id, kind: 'reward_model' },
  });
  const rmBest = (rm.resolved as { best?: { step: number; metric: string } }).best;
  expect(rmBest?.metric).toBe('eval/accuracy');
  expect([4, 8, 12]).toContain(rmBest?.step);
  const rmDir = join(api.artifactDir, rm.modelKey as string);
  const rmKept = await loadCheckpoint(rmDir);
  const rmLast = await loadCheckpoint(join(rmDir, 'last'));
  for (const model of [rmKept, rmLast]) expect(Number(model.metadata.reward_std)).toBeGreaterThan(0);
}, 180_000);
