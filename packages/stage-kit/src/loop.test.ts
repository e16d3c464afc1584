import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crossEntropy, slice, type Tensor } from '@rlhf/graph';
import { type GptConfig, gptForward, initParams } from '@rlhf/model';
import { createRuntime, int64, type Runtime } from '@rlhf/runtime';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { directoryCheckpointStore } from './checkpoints.js';
import { stackSteps } from './data.js';
import { modelFromFiles, trainerFromFiles } from './files.js';
import { NonFiniteError, SHUTDOWN, StageAbortedError, type StageHooks } from './hooks.js';
import {
  runSupervisedLoop,
  type SupervisedConfig,
  type SupervisedLoop,
  type SupervisedResult,
} from './loop.js';

// A micro GPT learning a fixed set of token sequences: the loop's bookkeeping, not learning, is under test.
// (vocabSize 259: checkpoints load with packages/model's ByteTokenizer, which needs its 259 ids.)
const config: GptConfig = {
  vocabSize: 259,
  maxPositions: 8,
  nEmbd: 16,
  nLayer: 1,
  nHead: 2,
  layerNormEps: 1e-5,
};
const T = 7;
const B = 8;
const data = Array.from({ length: 40 }, (_, i) =>
  Array.from({ length: T + 1 }, (_, t) => (i * 3 + t * ((i % 5) + 1)) % 16),
);

const base: SupervisedConfig = {
  epochs: 1,
  maxSteps: 22, // calls of 4 steps, then a tail of 2
  batchSize: B,
  lr: 1e-2,
  warmupSteps: 2,
  schedule: 'cosine',
  weightDecay: 0,
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  adamEpsilon: 1e-8,
  maxGradNorm: 1,
  evalEvery: 8,
  keepBest: null,
  checkpointEvery: 8,
  seed: 3,
  stepsPerCall: 4,
  gradientAccumulation: 1,
  recompute: false,
};

let runtime: Runtime;
let dir: string;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stage-kit-loop-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

function run(
  overrides: Partial<SupervisedConfig>,
  hooks: StageHooks = {},
  stage = 'toy',
  extra: Partial<Pick<SupervisedLoop, 'callBudgetSeconds' | 'evaluate'>> = {},
): Promise<SupervisedResult> {
  return runSupervisedLoop({
    stage,
    config: { ...base, ...overrides },
    model: { config, params: initParams(config, 1) },
    runtime,
    hooks,
    trainSize: data.length,
    graph: {
      batch: [{ name: 'tokens', dtype: 'int64', shape: [B, T + 1] }],
      loss: (params: Map<string, Tensor>, batch: Record<string, Tensor>) => {
        const ids = slice(batch.tokens, [0], [T], [1]);
        const targets = slice(batch.tokens, [1], [T + 1], [1]);
        const { logits } = gptForward(params, config, ids);
        return { loss: crossEntropy(logits, targets) };
      },
    },
    feeds: (batches) => ({
      feeds: stackSteps(
        batches.map((rows) => ({
          tokens: int64(
            [B, T + 1],
            rows.flatMap((i) => data[i]),
          ),
        })),
      ),
      tokens: batches.length * B * T,
    }),
    // A call counter stands in for held-out metrics: the test checks when evaluation happens.
    evaluate: async () => ({ 'eval/calls': ++evalCalls }),
    ...extra,
  });
}
let evalCalls = 0;

describe('runSupervisedLoop', () => {
  test('runs every step (a short tail call included), evaluating and checkpointing on schedule', async () => {
    const steps: number[] = [];
    const evalAt: number[] = [];
    const progress: number[] = [];
    const store = directoryCheckpointStore(dir, { keep: 10 });
    const saved: number[] = [];
    const result = await run(
      {},
      {
        checkpoints: {
          save: (s, f) => {
            saved.push(s);
            return store.save(s, f);
          },
          latest: () => store.latest(),
        },
        onMetrics: (step, values) => {
          if ('train/loss' in values) steps.push(step);
          if ('eval/calls' in values) evalAt.push(step);
          for (const name of [
            'train/loss',
            'train/lr',
            'train/grad_norm',
            'timing/step',
            'perf/tokens_per_sec',
          ])
            if (step > 0) expect(Number.isFinite(values[name]), name).toBe(true);
        },
        onProgress: (step) => progress.push(step),
      },
    );
    expect(steps).toEqual(Array.from({ length: 22 }, (_, i) => i + 1));
    expect(progress).toEqual([4, 8, 12, 16, 20, 22]);
    expect(evalAt).toEqual([0, 8, 16, 22]);
    expect(saved).toEqual([8, 16, 22]);
    expect(result).toMatchObject({ step: 22, totalSteps: 22, resumedFrom: null });
    const latest = await store.latest();
    const { trainer, moments } = trainerFromFiles(latest!.files);
    expect(trainer).toMatchObject({
      stage: 'toy',
      step: 22,
      seed: 3,
      batchSize: B,
      unitsSeen: 22 * B,
      epoch: 4,
    });
    expect(moments.m.get('wte.weight')!.some((x) => x !== 0)).toBe(true);
    expect((await modelFromFiles(latest!.files)).params.get('wte.weight')).toEqual(
      result.model.params.get('wte.weight'),
    );
  });

  test('evaluates exactly every evalEvery steps when that is not a multiple of the call length', async () => {
    const evalAt: number[] = [];
    const steps: number[] = [];
    const result = await run(
      { evalEvery: 6 },
      {
        onMetrics: (step, values) => {
          if ('train/loss' in values) steps.push(step);
          if ('eval/calls' in values) evalAt.push(step);
        },
      },
    );
    expect(evalAt).toEqual([0, 6, 12, 18, 22]);
    expect(steps).toEqual(Array.from({ length: 22 }, (_, i) => i + 1));
    // Calls of 4 and 2 steps on two sessions continue one optimizer state: the same weights as calls of 2.
    const even = await run({ evalEvery: 6, stepsPerCall: 2 });
    for (const [name, data] of even.model.params) {
      const other = result.model.params.get(name)!;
      for (let i = 0; i < data.length; i++) expect(other[i]).toBeCloseTo(data[i], 5);
    }
  });

  test('keepBest: the best evaluation becomes the output, the last weights stay beside it, across a resume', async () => {
    // Scores by evaluation (steps 0, 8, 16, 22): the best after training is step 16's.
    const scores = [5, 0.2, 0.9, 0.4];
    const seen = new Map<number, Map<string, Float32Array>>();
    let calls = 0;
    const evaluate: SupervisedLoop['evaluate'] = async (model) => {
      const i = calls++;
      seen.set(i, new Map([...model.params].map(([n, v]) => [n, Float32Array.from(v)])));
      return { 'eval/score': scores[i] };
    };
    const keepBest = { metric: 'eval/score', mode: 'max' } as const;
    const result = await run({ keepBest }, {}, 'toy', { evaluate });
    expect(result.best).toEqual({ step: 16, metric: 'eval/score', value: 0.9 });
    expect(result.eval).toEqual({ 'eval/score': 0.9 });
    expect(result.model.params).toEqual(seen.get(2));
    expect(result.last?.params).toEqual(seen.get(3));

    // Interrupted after step 16 and resumed: the best of before the interruption is still the output.
    calls = 0;
    const controller = new AbortController();
    const store = directoryCheckpointStore(dir);
    const interrupted = await run(
      { keepBest },
      {
        signal: controller.signal,
        checkpoints: store,
        onMetrics: (step) => {
          if (step === 20) controller.abort(SHUTDOWN);
        },
      },
      'toy',
      { evaluate },
    ).catch((e: unknown) => e);
    expect(interrupted).toMatchObject({ step: 20, checkpointed: true });
    calls = 3; // the resumed run evaluates only at step 22
    const resumed = await run({ keepBest }, { checkpoints: store }, 'toy', { evaluate });
    expect(resumed.best).toEqual({ step: 16, metric: 'eval/score', value: 0.9 });
    for (const [name, data] of seen.get(2)!) {
      const other = resumed.model.params.get(name)!;
      for (let i = 0; i < data.length; i++) expect(other[i]).toBeCloseTo(data[i], 6);
    }
    await expect(run({ keepBest: { metric: 'eval/nope', mode: 'min' } })).rejects.toThrow(
      'keepBest.metric "eval/nope" is not a held-out metric of this stage (it reports: eval/calls)',
    );
  });

  test("a 'shutdown' abort saves a checkpoint; the resumed run ends exactly where an uninterrupted one does", async () => {
    const reference = await run({});
    const controller = new AbortController();
    const store = directoryCheckpointStore(dir);
    const interrupted = run(
      {},
      {
        signal: controller.signal,
        checkpoints: store,
        onMetrics: (step) => {
          if (step === 12) controller.abort(SHUTDOWN);
        },
      },
    );
    const error = await interrupted.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StageAbortedError);
    expect(error).toMatchObject({ step: 12, checkpointed: true });
    expect((await store.latest())?.step).toBe(12);

    const resumedSteps: number[] = [];
    const resumed = await run({}, { checkpoints: store, onMetrics: (step) => void resumedSteps.push(step) });
    expect(resumed).toMatchObject({ step: 22, resumedFrom: 12 });
    expect(resumedSteps[0]).toBe(13);
    for (const [name, data] of reference.model.params) {
      const other = resumed.model.params.get(name)!;
      for (let i = 0; i < data.length; i++) expect(other[i]).toBeCloseTo(data[i], 6);
    }
  });

  test('any other abort reason (a cancel) stops without saving', async () => {
    const controller = new AbortController();
    const store = directoryCheckpointStore(dir);
    const error = await run(
      {},
      {
        signal: controller.signal,
        checkpoints: store,
        onMetrics: (step) => {
          if (step === 4) controller.abort('cancelled by user');
        },
      },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StageAbortedError);
    expect(error).toMatchObject({ step: 4, checkpointed: false });
    expect((error as Error).message).toMatch(/cancelled: cancelled by user/);
    expect(await store.latest()).toBeNull();
  });

  test('NaN/Inf in the loss stops with an error naming metric and step; the last good checkpoint stays', async () => {
    const store = directoryCheckpointStore(dir);
    await run({ maxSteps: 8 }, { checkpoints: store });
    const error = await run(
      { maxSteps: 16, lr: 1e30, warmupSteps: 0, schedule: 'constant' },
      { checkpoints: store },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonFiniteError);
    expect(error).toMatchObject({ metric: 'train/loss', lastCheckpointStep: 8 });
    expect((error as NonFiniteError).step).toBeGreaterThan(8);
    expect((error as Error).message).toMatch(
      /train\/loss is (NaN|Infinity) at step \d+; stopped\. The last good checkpoint is step 8/,
    );
    const latest = await store.latest();
    expect(latest?.step).toBe(8);
    const model = await modelFromFiles(latest!.files); // loading checks every weight is finite
    expect(model.params.size).toBeGreaterThan(0);
  });

  test('a checkpoint of another stage is not resumed from', async () => {
    const store = directoryCheckpointStore(dir);
    await run({ maxSteps: 4 }, { checkpoints: store }, 'sft');
    await expect(run({}, { checkpoints: store }, 'reward_model')).rejects.toThrow(/belongs to stage 'sft'/);
  });

  test('a call over the time budget shrinks the next calls, so a cancel is seen sooner; the result is the same', async () => {
    const progress: number[] = [];
    const messages: string[] = [];
    const budgeted = await run(
      {},
      { onProgress: (step) => progress.push(step), log: (m) => messages.push(m) },
      'toy',
      { callBudgetSeconds: 1e-9 },
    );
    // The first call fuses stepsPerCall = 4 steps; every call after it is one step.
    expect(progress).toEqual([4, ...Array.from({ length: 18 }, (_, i) => i + 5)]);
    expect(messages.some((m) => /4 steps took .* 1 per call from now on/.test(m))).toBe(true);
    const plain = await run({});
    const a = budgeted.model.params.get('wte.weight')!;
    const b = plain.model.params.get('wte.weight')!;
    expect(Math.max(...Array.from(a, (x, i) => Math.abs(x - b[i])))).toBeLessThan(1e-4);
  });
});
