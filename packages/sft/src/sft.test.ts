import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SftConfigInput, SftMetrics, type SftRow, validateJsonl } from '@rlhf/contracts';
import { groundTruthScore, scoreParts, sortDigitsFiles } from '@rlhf/examples';
import { ByteTokenizer, createGenerator, initParams, presetConfig } from '@rlhf/model';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import {
  directoryCheckpointStore,
  type ModelWeights,
  NonFiniteError,
  promptText,
  SHUTDOWN,
  StageAbortedError,
} from '@rlhf/stage-kit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { sftExample, sftPromptResponse, trainSft } from './index.js';

const tiny = presetConfig('tiny');
const tokenizer = new ByteTokenizer();
const freshModel = (): ModelWeights => ({ config: tiny, params: initParams(tiny, 0) });

let runtime: Runtime;
let rows: SftRow[];
let heldOutPrompts: string[];
let dir: string;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
  rows = (await validateJsonl('sft', readFileSync(sortDigitsFiles.sft, 'utf8'))).rows;
  // PPO's prompt file is drawn with another seed: prompts the SFT stage never trained on.
  const prompts = (await validateJsonl('prompt', readFileSync(sortDigitsFiles.prompt, 'utf8'))).rows;
  heldOutPrompts = prompts.slice(0, 32).map(promptText);
});
afterAll(() => runtime.close());
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sft-test-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

/** Greedy answers to the held-out prompts: mean ground-truth score and share in the task's exact format. */
async function greedyQuality(model: ModelWeights) {
  const generator = await createGenerator(runtime, model.config);
  try {
    const out = await generator.generate({
      params: model.params,
      prompts: heldOutPrompts.map((p) => [tokenizer.bosId, ...tokenizer.encode(p)]),
      maxNewTokens: 16,
      temperature: 0,
      eosId: tokenizer.eosId,
      padId: tokenizer.padId,
    });
    const answers = out.tokens.map((tokens, i) =>
      tokenizer.decode(tokens.slice(0, out.mask[i].filter((m) => m === 1).length), {
        skipSpecialTokens: true,
      }),
    );
    const scores = answers.map((a, i) => groundTruthScore(heldOutPrompts[i], a));
    const formatted = answers.filter((a, i) => out.finished[i] && scoreParts(heldOutPrompts[i], a).format);
    return {
      score: scores.reduce((a, b) => a + b, 0) / scores.length,
      formatRate: formatted.length / answers.length,
      answers,
    };
  } finally {
    await generator.release();
  }
}

describe('sft examples', () => {
  test('loss only on response tokens and eos; chat rows go through the chat template', () => {
    const example = sftExample({ ids: [256, 10, 11, 20, 21, 257], promptTokens: 3, truncated: false }, true);
    expect(example).toEqual({
      inputs: [256, 10, 11, 20, 21],
      targets: [10, 11, 20, 21, 257],
      lossMask: [0, 0, 1, 1, 1],
    });
    expect(
      sftExample({ ids: [256, 10, 20, 257], promptTokens: 2, truncated: false }, false).lossMask,
    ).toEqual([1, 1, 1]);
    expect(
      sftPromptResponse({
        messages: [
          { role: 'user', content: 'sort 2 1:' },
          { role: 'assistant', content: ' 1 2' },
        ],
      }),
    ).toEqual({ prompt: '<|user|>\nsort 2 1:\n<|assistant|>\n', response: ' 1 2' });
  });
});

describe('trainSft on sort-digits (tiny preset)', () => {
  test('lowers held-out loss and then answers held-out prompts in the task format', async () => {
    const config: SftConfigInput = {
      maxSteps: 384,
      batchSize: 32,
      lr: 3e-3,
      warmupSteps: 10,
      schedule: 'cosine',
      stepsPerCall: 16,
      evalEvery: 64,
    };
    const evalLoss: Record<number, number> = {};
    const names = new Set<string>();
    const before = await greedyQuality(freshModel());
    const result = await trainSft({
      config,
      model: freshModel(),
      rows,
      runtime,
      hooks: {
        onMetrics: (step, values) => {
          for (const name of Object.keys(values)) names.add(name);
          if (SftMetrics.evalLoss in values) evalLoss[step] = values[SftMetrics.evalLoss];
        },
      },
    });
    const after = await greedyQuality(result.model);
    console.log(
      `sft: held-out loss ${evalLoss[0].toFixed(3)} -> ${evalLoss[384].toFixed(3)}; greedy ground truth ` +
        `${before.score.toFixed(3)} -> ${after.score.toFixed(3)}, format ${before.formatRate} -> ${after.formatRate}; ` +
        `e.g. ${JSON.stringify(after.answers.slice(0, 4))}`,
    );

    expect(result.step).toBe(384);
    expect(Object.keys(evalLoss).map(Number)).toEqual([0, 64, 128, 192, 256, 320, 384]);
    expect(evalLoss[384]).toBeLessThan(0.25 * evalLoss[0]); // ~5.6 nats (near uniform) -> < 1.4
    expect(result.summary['eval/loss']).toBe(evalLoss[384]);
    expect(result.summary['eval/perplexity']).toBeCloseTo(Math.exp(evalLoss[384]), 6);
    expect([...names].sort()).toEqual(Object.values(SftMetrics).sort());
    expect(after.formatRate).toBeGreaterThanOrEqual(0.9);
    expect(before.formatRate).toBe(0);
    expect(after.score).toBeGreaterThan(before.score + 0.4);
    // Every resolved setting is recorded, the sequence cap with its effective value.
    expect(result.hyperparameters).toMatchObject({
      stage: 'sft',
      config: { maxSeqLen: 256, completionOnlyLoss: true, lr: 3e-3, seed: 42, validationFraction: 0.05 },
      model: tiny,
      effective: { maxSeqLen: 64, totalSteps: 384, trainExamples: 1900, validationExamples: 100 },
    });
  }, 240_000);

  test('shutdown mid-training checkpoints; the resumed stage ends at the same step with the same metrics', async () => {
    const config: SftConfigInput = {
      maxSteps: 40,
      batchSize: 16,
      lr: 3e-3,
      stepsPerCall: 8,
      checkpointEvery: 16,
    };
    const reference = await trainSft({ config, model: freshModel(), rows, runtime });

    const store = directoryCheckpointStore(dir);
    const controller = new AbortController();
    const error = await trainSft({
      config,
      model: freshModel(),
      rows,
      runtime,
      hooks: {
        signal: controller.signal,
        checkpoints: store,
        onMetrics: (step) => {
          if (step === 24) controller.abort(SHUTDOWN);
        },
      },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StageAbortedError);
    expect(error).toMatchObject({ step: 24, checkpointed: true });
    expect((await store.latest())?.step).toBe(24);

    const steps: number[] = [];
    const resumed = await trainSft({
      config,
      model: freshModel(),
      rows,
      runtime,
      hooks: { checkpoints: store, onMetrics: (step) => void steps.push(step) },
    });
    expect(resumed.step).toBe(40);
    expect(resumed.hyperparameters.resumedFrom).toBe(24);
    expect(steps[0]).toBe(25);
    expect(resumed.summary['eval/loss']).toBeCloseTo(reference.summary['eval/loss'], 4);
    expect((await store.latest())?.step).toBe(40);
  }, 120_000);

  test('a NaN weight stops the stage at its first step with a clear error and saves nothing', async () => {
    const model = freshModel();
    model.params.get('h.0.mlp.c_fc.weight')![5] = Number.NaN;
    const store = directoryCheckpointStore(dir);
    const error = await trainSft({
      config: { maxSteps: 16, batchSize: 8, stepsPerCall: 8, checkpointEvery: 8 },
      model,
      rows,
      runtime,
      hooks: { checkpoints: store },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonFiniteError);
    expect((error as Error).message).toMatch(/is NaN at step 0; stopped\. No checkpoint was saved/);
    expect(await store.latest()).toBeNull();
  });
});
