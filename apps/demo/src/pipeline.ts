// The demo's job, as a client does it: upload the synthetic task's datasets, submit SFT -> RM -> PPO over
// HTTP, follow it, and summarise what was learned from the run's own metric history.
import { readFile } from 'node:fs/promises';
import type { RunView } from '@rlhf/api';
import { PpoMetrics, RewardModelMetrics, SftMetrics } from '@rlhf/contracts';
import { SORT_DIGITS_TASK, sortDigitsFiles } from '@rlhf/examples';
import { type ApiClient, stageOf } from './client.js';

/** Stage settings sized for 2 CPU cores: the whole pipeline in about a minute and a half. */
export const DEMO_SPEC = {
  name: 'sort-digits demo',
  model: { preset: 'tiny' },
  sft: {
    maxSteps: 600,
    batchSize: 32,
    lr: 3e-3,
    warmupSteps: 20,
    evalEvery: 100,
    checkpointEvery: 200,
    stepsPerCall: 20,
  },
  reward_model: {
    maxSteps: 300,
    batchSize: 16,
    lr: 1e-3,
    evalEvery: 100,
    checkpointEvery: 100,
    stepsPerCall: 20,
  },
  ppo: {
    iterations: 16,
    rolloutBatchSize: 32,
    minibatches: 2,
    ppoEpochs: 2,
    maxNewTokens: 16,
    lr: 1e-4,
    kl: { type: 'adaptive', coef: 0.1, target: 2, horizon: 1000 },
    checkpointEvery: 4,
    sampleEvery: 4,
    // The task's programmatic reward, logged as objective/ground_truth (the worker registers it by this name).
    groundTruth: SORT_DIGITS_TASK,
  },
} as const;

export interface DemoSummary {
  runId: string;
  status: string;
  seconds: number;
  sft: { evalLossBefore: number | null; evalLossAfter: number | null };
  rewardModel: { evalAccuracy: number | null };
  ppo: {
    groundTruthBefore: number | null;
    groundTruthAfter: number | null;
    scoreBefore: number | null;
    scoreAfter: number | null;
    finalKl: number | null;
  };
  samples: number;
}

/** Uploads the four sort-digits datasets (the ranked K = 4 lists train the reward model) and submits the run. */
export async function submitDemoRun(client: ApiClient, spec = DEMO_SPEC): Promise<RunView> {
  const upload = async (kind: 'sft' | 'ranked' | 'prompt', file: string) =>
    (await client.uploadDataset(`sort-digits-${kind}`, kind, await readFile(file, 'utf8'))).id;
  const sft = await upload('sft', sortDigitsFiles.sft);
  const ranked = await upload('ranked', sortDigitsFiles.ranked);
  const prompts = await upload('prompt', sortDigitsFiles.prompt);
  return client.createRun({
    name: spec.name,
    model: spec.model,
    stages: [
      { kind: 'sft', datasetId: sft, config: spec.sft },
      { kind: 'reward_model', datasetId: ranked, config: spec.reward_model },
      { kind: 'ppo', datasetId: prompts, config: spec.ppo },
    ],
  });
}

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

/** Polls the run until it finishes; `onUpdate` sees every poll (progress bars). */
export async function waitForRun(
  client: ApiClient,
  runId: string,
  onUpdate: (run: RunView) => void = () => {},
  { intervalMs = 500, timeoutMs = 15 * 60_000 } = {},
): Promise<RunView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await client.getRun(runId);
    onUpdate(run);
    if (FINISHED.has(run.status)) return run;
    if (Date.now() > deadline)
      throw new Error(`run ${runId} still ${run.status} after ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

const mean = (xs: number[]): number | null => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

/** What the run learned, from its metric history: first vs last values of the metrics that tell. */
export async function summarize(client: ApiClient, run: RunView, seconds: number): Promise<DemoSummary> {
  const series = async (kind: 'sft' | 'reward_model' | 'ppo', name: string) =>
    (await client.metrics(run.id, { stageId: stageOf(run, kind).id, name }))
      .sort((a, b) => a.step - b.step)
      .map((p) => p.value);
  const sftLoss = await series('sft', SftMetrics.evalLoss);
  const rmAccuracy = await series('reward_model', RewardModelMetrics.evalAccuracy);
  const truth = await series('ppo', PpoMetrics.groundTruth);
  const scores = await series('ppo', PpoMetrics.scores);
  const kl = await series('ppo', PpoMetrics.kl);
  // PPO iteration metrics are noisy (one rollout batch each): compare the first and last few iterations.
  const head = (xs: number[]) => mean(xs.slice(0, 2));
  const tail = (xs: number[]) => mean(xs.slice(-2));
  return {
    runId: run.id,
    status: run.status,
    seconds: Math.round(seconds),
    sft: { evalLossBefore: sftLoss[0] ?? null, evalLossAfter: sftLoss.at(-1) ?? null },
    rewardModel: { evalAccuracy: rmAccuracy.at(-1) ?? null },
    ppo: {
      groundTruthBefore: head(truth),
      groundTruthAfter: tail(truth),
      scoreBefore: head(scores),
      scoreAfter: tail(scores),
      finalKl: kl.at(-1) ?? null,
    },
    samples: (await client.samples(run.id)).length,
  };
}
