// RAFT on sort-digits: from the SFT policy, with the reward model trained on rankings of SFT samples (the PPO
// test's fixtures), the kept set scores above all samples every iteration, and the policy's ground truth rises.
import { RaftMetrics } from '@rlhf/contracts';
import { generatePromptRows, groundTruthScore } from '@rlhf/examples';
import { meanGroundTruth, ppoPrompts, rewardModel, sftPolicy } from '@rlhf/ppo/testing';
import { mkdtemp, rm as remove } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initParams, presetConfig } from '@rlhf/model';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { directoryCheckpointStore, type ModelWeights, SHUTDOWN, StageAbortedError } from '@rlhf/stage-kit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { selectKept, trainRaft } from './raft.js';

let runtime: Runtime;
let sft: ModelWeights;
let rm: ModelWeights;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
  sft = await sftPolicy(runtime);
  rm = await rewardModel(runtime);
}, 600_000);
afterAll(() => runtime.close());

describe('selectKept', () => {
  const samples = [
    { prompt: 0, score: 1 },
    { prompt: 0, score: 3 },
    { prompt: 1, score: 0 },
    { prompt: 1, score: -1 },
  ];
  test('best k per prompt, or best B·k overall', () => {
    expect(selectKept(samples, 1, 'per_prompt', 2)).toEqual([samples[1], samples[2]]);
    expect(selectKept(samples, 1, 'global', 2)).toEqual([samples[1], samples[0]]);
  });
});

describe('trainRaft on sort-digits (tiny preset)', () => {
  test('the kept set beats the samples every iteration and the ground truth rises', async () => {
    const held = generatePromptRows(96, { seed: 901 });
    const before = await meanGroundTruth(runtime, sft, held, [1, 2]);
    const metrics: Record<string, number>[] = [];
    const samples: number[] = [];
    const result = await trainRaft({
      config: {
        iterations: 8,
        promptsPerIteration: 32,
        samplesPerPrompt: 4,
        keepPerPrompt: 1,
        stepsPerIteration: 4,
        batchSize: 16,
        lr: 1e-4,
        maxNewTokens: 12,
        checkpointEvery: 4,
        sampleEvery: 4,
      },
      policy: sft,
      rewardModel: rm,
      prompts: ppoPrompts(512),
      runtime,
      groundTruth: groundTruthScore,
      hooks: {
        onMetrics: (_, values) => {
          metrics.push(values);
        },
        onSamples: (step) => {
          samples.push(step);
        },
      },
    });
    const after = await meanGroundTruth(runtime, result.model, held, [1, 2]);
    console.log(JSON.stringify({ before, after, last: metrics.at(-1) }));
    expect(metrics).toHaveLength(8);
    expect(samples).toEqual([4, 8]);
    for (const m of metrics) {
      expect(m[RaftMetrics.rewardKept]).toBeGreaterThan(m[RaftMetrics.rewardAll]);
      expect(m[RaftMetrics.groundTruthKept]).toBeGreaterThan(m[RaftMetrics.groundTruth]);
    }
    expect(after).toBeGreaterThan(before + 0.05);
    expect(result.summary[RaftMetrics.kl]).toBeGreaterThan(0);
  }, 600_000);

  test('refuses a policy with a scalar head and a reward model without one', async () => {
    const prompts = ppoPrompts(4);
    await expect(trainRaft({ config: {}, policy: rm, rewardModel: rm, prompts, runtime })).rejects.toThrow(
      'the policy must be a language model',
    );
    await expect(trainRaft({ config: {}, policy: sft, rewardModel: sft, prompts, runtime })).rejects.toThrow(
      'scalar head',
    );
  });

  test('shutdown mid-stage checkpoints; the resumed stage ends where an uninterrupted one does', async () => {
    const tiny = presetConfig('tiny');
    const policy = { config: tiny, params: initParams(tiny, 3) };
    const scorer = {
      config: { ...tiny, scalarHead: true },
      params: initParams({ ...tiny, scalarHead: true }, 4),
    };
    const config = {
      iterations: 6,
      promptsPerIteration: 8,
      samplesPerPrompt: 2,
      stepsPerIteration: 2,
      batchSize: 4,
      maxNewTokens: 6,
      lr: 1e-3,
      checkpointEvery: 2,
    };
    const prompts = ppoPrompts(32);
    const uninterrupted = await trainRaft({ config, policy, rewardModel: scorer, prompts, runtime });
    const dir = await mkdtemp(join(tmpdir(), 'raft-'));
    try {
      const checkpoints = directoryCheckpointStore(dir);
      const controller = new AbortController();
      const error = await trainRaft({
        config,
        policy,
        rewardModel: scorer,
        prompts,
        runtime,
        hooks: {
          signal: controller.signal,
          checkpoints,
          onMetrics: (step) => {
            if (step === 3) controller.abort(SHUTDOWN);
          },
        },
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StageAbortedError);
      expect((await checkpoints.latest())?.step).toBe(3);
      const resumed = await trainRaft({
        config,
        policy,
        rewardModel: scorer,
        prompts,
        runtime,
        hooks: { checkpoints },
      });
      expect(resumed.hyperparameters).toMatchObject({ resumedFrom: 3 });
      const a = resumed.model.params.get('wte.weight')!;
      const b = uninterrupted.model.params.get('wte.weight')!;
      expect(Math.max(...Array.from(a, (x, i) => Math.abs(x - b[i])))).toBeLessThan(1e-4);
    } finally {
      await remove(dir, { recursive: true, force: true });
    }
  });
});
