// GRPO and RLOO with only a programmatic reward (no reward model, no critic) on sort-digits, from the SFT policy:
// the held-out ground truth rises well above the SFT policy's.
import { GrpoMetrics, type GrpoConfigInput } from '@rlhf/contracts';
import { generatePromptRows, groundTruthScore } from '@rlhf/examples';
import { meanGroundTruth, ppoPrompts, sftPolicy } from '@rlhf/ppo/testing';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import type { ModelWeights } from '@rlhf/stage-kit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { trainGrpo } from './grpo.js';

let runtime: Runtime;
let sft: ModelWeights;
let before: number;
const held = generatePromptRows(96, { seed: 901 });
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
  sft = await sftPolicy(runtime);
  before = await meanGroundTruth(runtime, sft, held, [1, 2]);
}, 600_000);
afterAll(() => runtime.close());

const base: GrpoConfigInput = {
  iterations: 12,
  promptsPerIteration: 16,
  groupSize: 8,
  minibatches: 2,
  lr: 1e-4,
  maxNewTokens: 12,
  reward: 'sort-digits',
  checkpointEvery: 100,
  sampleEvery: 6,
};

async function run(config: GrpoConfigInput) {
  const metrics: Record<string, number>[] = [];
  const result = await trainGrpo({
    config: { ...base, ...config },
    policy: sft,
    task: groundTruthScore,
    prompts: ppoPrompts(512),
    runtime,
    hooks: {
      onMetrics: (_, values) => {
        metrics.push(values);
      },
    },
  });
  const after = await meanGroundTruth(runtime, result.model, held, [1, 2]);
  console.log(JSON.stringify({ config, before, after, first: metrics[0], last: metrics.at(-1) }));
  return { after, metrics };
}

describe('GRPO / RLOO on sort-digits with a programmatic reward only', () => {
  test('GRPO raises the held-out ground truth; KL stays small; metrics each iteration', async () => {
    const { after, metrics } = await run({ advantage: 'grpo' });
    expect(metrics).toHaveLength(12);
    for (const name of Object.values(GrpoMetrics))
      expect(Number.isFinite(metrics[11][name]), name).toBe(true);
    expect(after).toBeGreaterThan(before + 0.1);
    expect(metrics[11][GrpoMetrics.kl]).toBeLessThan(1);
  }, 600_000);

  test('RLOO raises it too', async () => {
    const { after } = await run({ advantage: 'rloo' });
    expect(after).toBeGreaterThan(before + 0.1);
  }, 600_000);

  test('refuses a missing reward', async () => {
    await expect(
      trainGrpo({ config: { reward: 'reward_model' }, policy: sft, prompts: ppoPrompts(4), runtime }),
    ).rejects.toThrow("reward 'reward_model' needs a reward model");
  });
});
