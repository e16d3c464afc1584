// The acceptance comparison of issue 15 on sort-digits: a policy trained from SFT by a short GRPO run on the
// task's ground truth beats SFT with a win-rate interval above 1/2, judged by the ground truth and by the
// fixture reward model (trained on rankings of SFT samples, so it has never seen the GRPO policy).
import { generatePromptRows, groundTruthScore } from '@rlhf/examples';
import { trainGrpo } from '@rlhf/grpo';
import { ppoPrompts, rewardModel, sftPolicy } from '@rlhf/ppo/testing';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import type { ModelWeights } from '@rlhf/stage-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bradleyTerry } from './bradley-terry.js';
import { compareModels, type EvalJudge } from './compare.js';
import { judgeAgreement } from './gate.js';

let runtime: Runtime;
let sft: ModelWeights;
let trained: ModelWeights;
let rm: ModelWeights;
const prompts = generatePromptRows(96, { seed: 901 }).map((row) => {
  const prompt = (row as { prompt?: unknown }).prompt;
  if (typeof prompt !== 'string') throw new Error('expected a plain prompt row');
  return prompt;
});

beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
  sft = await sftPolicy(runtime);
  rm = await rewardModel(runtime);
  // The GRPO settings of packages/grpo's learning test (12 iterations of 16 prompts × 8 samples).
  const result = await trainGrpo({
    config: {
      iterations: 12,
      promptsPerIteration: 16,
      groupSize: 8,
      minibatches: 2,
      lr: 1e-4,
      maxNewTokens: 12,
      reward: 'sort-digits',
      checkpointEvery: 100,
    },
    policy: sft,
    task: groundTruthScore,
    prompts: ppoPrompts(512),
    runtime,
  });
  trained = result.model;
}, 1_200_000);
afterAll(() => runtime.close());

const compare = (judge: EvalJudge) =>
  compareModels({
    runtime,
    models: [
      { name: 'grpo', model: trained },
      { name: 'sft', model: sft },
    ],
    prompts,
    seeds: [1, 2],
    sampling: { maxNewTokens: 12, temperature: 1 },
    judge,
  });

async function expectWin(label: string, judge: EvalJudge): Promise<void> {
  const result = await compare(judge);
  const { winRate } = result.pairs[0];
  console.log(
    `GRPO vs SFT by ${label}: ${winRate.wins}/${winRate.ties}/${winRate.losses}, win rate ` +
      `${winRate.winRate.toFixed(3)} [${winRate.interval.lower.toFixed(3)}, ${winRate.interval.upper.toFixed(3)}], ` +
      `mean scores ${JSON.stringify(result.meanScores)}`,
  );
  expect(winRate.interval.lower).toBeGreaterThan(0.5);
  const fit = bradleyTerry(result.comparisons, { anchor: { model: 'sft', rating: 1000 }, resamples: 500 });
  const grpo = fit.ratings.find((r) => r.model === 'grpo')!;
  expect(grpo.interval.lower).toBeGreaterThan(1000);
}

describe('a GRPO-trained policy against SFT on sort-digits', () => {
  it('wins by the ground truth with a 95 % interval above 1/2', async () => {
    await expectWin('the ground truth', { kind: 'score', score: groundTruthScore });
  }, 600_000);
  it('wins by the reward model with a 95 % interval above 1/2', async () => {
    await expectWin('the reward model', { kind: 'reward_model', model: rm });
  }, 600_000);
  it('has the reward model agree with the ground truth on the same responses beyond chance', async () => {
    const truth = await compare({ kind: 'score', score: groundTruthScore });
    const byRm = await compare({ kind: 'reward_model', model: rm });
    expect(byRm.pairs[0].rows.map((r) => r.responseA)).toEqual(truth.pairs[0].rows.map((r) => r.responseA));
    const agreement = judgeAgreement(
      byRm.pairs[0].rows.map((r) => r.outcome),
      truth.pairs[0].rows.map((r) => r.outcome),
    );
    console.log(`RM judge vs ground truth (GRPO vs SFT rows): ${JSON.stringify(agreement)}`);
    expect(agreement.kappa).toBeGreaterThan(0.2);
  }, 600_000);
});
