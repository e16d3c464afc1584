// The in-place trainer (@rlhf/graph createTrainer: state lent to the ORT thread and updated in its own buffers,
// K = 1 without a Loop, the clip factor always applied) against the copying trainer it replaced, on a tiny
// 2-layer GPT-2: the same ONNX ops on the same numbers, so the same bits.
import { buildTrainStep, createTrainer, crossEntropy, reduceMean, type TrainStepSpec } from '@rlhf/graph';
import { createRuntime, int64, type Runtime, type Weights } from '@rlhf/runtime';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type GptConfig, initParams, paramShapes } from './config.js';
import { gptForward } from './gpt.js';
import { buildCopyingTrainStep, createCopyingTrainer } from './testing/copying-trainer.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu', intraOpNumThreads: 1 });
});
afterAll(() => runtime.close());

const config: GptConfig = {
  vocabSize: 29,
  maxPositions: 16,
  nEmbd: 16,
  nLayer: 2,
  nHead: 2,
  layerNormEps: 1e-5,
};
const [B, T] = [2, 6];

const spec = (K: number, M: number, maxGradNorm?: number): TrainStepSpec => ({
  name: 'gpt_sft',
  params: paramShapes(config),
  batch: [
    { name: 'input_ids', dtype: 'int64', shape: [B, T] },
    { name: 'targets', dtype: 'int64', shape: [B, T] },
  ],
  loss: (params, batch) => {
    const { logits } = gptForward(params, config, batch.input_ids);
    return { loss: crossEntropy(logits, batch.targets), metrics: { meanLogit: reduceMean(logits) } };
  },
  optimizer: { weightDecay: 0.1, ...(maxGradNorm !== undefined && { maxGradNorm }) },
  steps: K,
  accumulate: M,
});

// Token ids of call `call`: deterministic, different per call, step and micro-batch.
const ids = (K: number, M: number, call: number, shift: number) =>
  int64(
    [K, M, B, T],
    Array.from({ length: K * M * B * T }, (_, i) => (i * 7 + call * 13 + shift) % config.vocabSize),
  );

const same = (a: Weights, b: Weights) => {
  expect([...a.keys()]).toEqual([...b.keys()]);
  for (const [name, data] of a) expect(data, name).toEqual(b.get(name));
};

describe('in-place trainer', () => {
  for (const [K, M, clip] of [
    [1, 1, undefined],
    [1, 1, 0.05],
    [1, 2, 0.05],
    [3, 1, undefined],
    [2, 2, 0.05],
  ] as const) {
    test(`K=${K} M=${M} ${clip ? `clip ${clip}` : 'no clip'}: bit for bit the copying trainer, 3 calls`, async () => {
      const init = initParams(config, 3);
      const before = new Map([...init].map(([n, d]) => [n, d.slice()]));
      const step = buildTrainStep(spec(K, M, clip));
      // Every param and moment is written into its own buffer (the graph proves it safe).
      expect(step.inPlace.size).toBe(3 * init.size);
      const ours = await createTrainer(runtime, step, { params: init });
      const theirs = await createCopyingTrainer(runtime, buildCopyingTrainStep(spec(K, M, clip)), {
        params: init,
      });
      for (let call = 0; call < 3; call++) {
        const batch = { input_ids: ids(K, M, call, 0), targets: ids(K, M, call, 1) };
        const lrs = Array.from({ length: K }, (_, k) => 1e-2 * (1 + k + call));
        const [a, b] = [await ours.run(batch, lrs), await theirs.run(batch, lrs)];
        expect(a).toEqual(b); // losses, grad norms and metrics
        if (clip) expect(Math.max(...a.gradNorm)).toBeGreaterThan(clip); // clipping really acts
      }
      same(ours.state.params, theirs.state.params);
      same(ours.state.m, theirs.state.m);
      same(ours.state.v, theirs.state.v);
      expect(ours.state.step).toBe(3 * K);
      same(init, before); // the caller's arrays: copied, never detached nor changed
      await Promise.all([ours.release(), theirs.release()]);
    });
  }

  test('a failed run keeps the state; the next run goes on as if it had not happened', async () => {
    const init = initParams(config, 5);
    const ours = await createTrainer(runtime, buildTrainStep(spec(1, 1)), { params: init });
    const theirs = await createCopyingTrainer(runtime, buildCopyingTrainStep(spec(1, 1)), { params: init });
    const batch = { input_ids: ids(1, 1, 0, 0), targets: ids(1, 1, 0, 1) };
    await ours.run(batch, 1e-2);
    await theirs.run(batch, 1e-2);
    const bad = {
      input_ids: ids(1, 1, 1, 0),
      targets: int64([1, 1, B, T + 1], new Array(B * (T + 1)).fill(0)),
    };
    await expect(ours.run(bad, 1e-2)).rejects.toThrow();
    same(ours.state.params, theirs.state.params);
    same(ours.state.m, theirs.state.m);
    const next = { input_ids: ids(1, 1, 2, 0), targets: ids(1, 1, 2, 1) };
    expect(await ours.run(next, 1e-2)).toEqual(await theirs.run(next, 1e-2));
    same(ours.state.params, theirs.state.params);
    expect(ours.state.step).toBe(2);
    await Promise.all([ours.release(), theirs.release()]);
  });

  test('another trainer takes over the state without a copy; restoring foreign arrays copies them', async () => {
    const init = initParams(config, 7);
    const a = await createTrainer(runtime, buildTrainStep(spec(1, 1)), { params: init });
    const b = await createTrainer(runtime, buildTrainStep(spec(2, 1)), { params: init });
    const batch = { input_ids: ids(1, 1, 0, 0), targets: ids(1, 1, 0, 1) };
    await a.run(batch, 1e-2);
    const handed = a.state;
    const name = [...init.keys()][0];
    b.restore(handed);
    expect(b.state.params.get(name)).toBe(handed.params.get(name)); // owned by a trainer: taken over
    const foreign = new Map([...handed.params].map(([n, d]) => [n, d.slice()]));
    b.restore({ ...handed, params: foreign });
    expect(b.state.params.get(name)).not.toBe(foreign.get(name));
    expect(b.state.params.get(name)).toEqual(foreign.get(name));
    await Promise.all([a.release(), b.release()]);
  });

  test("a released trainer's final model (the next stage's start and reference) is copied, never detached", async () => {
    const first = await createTrainer(runtime, buildTrainStep(spec(1, 1)), { params: initParams(config, 9) });
    const batch = { input_ids: ids(1, 1, 0, 0), targets: ids(1, 1, 0, 1) };
    await first.run(batch, 1e-2);
    const model = first.state.params; // a stage's output
    const kept = new Map([...model].map(([n, d]) => [n, d.slice()]));
    const live = await createTrainer(runtime, buildTrainStep(spec(1, 1)), { params: model });
    await live.run(batch, 1e-2); // init copies even from a live trainer
    same(model, kept);
    await first.release();
    const next = await createTrainer(runtime, buildTrainStep(spec(2, 1)), { params: model });
    next.restore({ ...next.state, params: model }); // released: restore copies too
    await next.run({ input_ids: ids(2, 1, 1, 0), targets: ids(2, 1, 1, 1) }, 1e-2);
    same(model, kept);
    await Promise.all([live.release(), next.release()]);
  });
});
