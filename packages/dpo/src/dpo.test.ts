// The DPO stage's bookkeeping on a tiny random policy: metrics each step, resume after a shutdown ends where an
// uninterrupted run ends (the reference log-probs are recomputed from the same reference), and clear refusals.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DpoConfigInput, DpoMetrics } from '@rlhf/contracts';
import { generatePreferenceRows, generateRankedRows } from '@rlhf/examples';
import { initParams, presetConfig } from '@rlhf/model';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import {
  directoryCheckpointStore,
  type ModelWeights,
  SHUTDOWN,
  StageAbortedError,
  trainerJsonFromFiles,
} from '@rlhf/stage-kit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { trainDpo } from './dpo.js';

const tiny = presetConfig('tiny');
const policy = (): ModelWeights => ({ config: tiny, params: initParams(tiny, 1) });
// K = 4 lists and K = 2 pairs share batches.
const rows = [...generateRankedRows(40, { seed: 5 }), ...generatePreferenceRows(40, { seed: 6 })];
const config: DpoConfigInput = {
  maxSteps: 12,
  batchSize: 8,
  lr: 1e-3,
  beta: 0.5,
  stepsPerCall: 4,
  checkpointEvery: 4,
  evalEvery: 4,
  validationFraction: 0.2,
  rpoAlpha: 0.5,
};

let runtime: Runtime;
let dir: string;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dpo-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('trainDpo', () => {
  test('reports TRL metrics every step; at step 0 the policy is the reference (no margin)', async () => {
    const seen: Record<number, Record<string, number>> = {};
    const result = await trainDpo({
      config,
      model: policy(),
      rows,
      runtime,
      hooks: {
        onMetrics: (step, values) => {
          seen[step] = { ...seen[step], ...values };
        },
      },
    });
    expect(result.step).toBe(12);
    expect(seen[0][DpoMetrics.evalRewardsMargins]).toBeCloseTo(0, 4);
    expect(seen[0][DpoMetrics.evalKl]).toBeCloseTo(0, 4);
    for (let step = 1; step <= 12; step++)
      for (const name of [
        DpoMetrics.loss,
        DpoMetrics.rewardsChosen,
        DpoMetrics.rewardsRejected,
        DpoMetrics.rewardsAccuracies,
        DpoMetrics.rewardsMargins,
        DpoMetrics.logpsChosen,
        DpoMetrics.logpsRejected,
      ])
        expect(Number.isFinite(seen[step][name]), `${name} at ${step}`).toBe(true);
    expect(result.hyperparameters).toMatchObject({
      stage: 'dpo',
      effective: { responsesPerPrompt: 4, trainPrompts: 64, reference: 'starting policy' },
    });
  });

  test('shutdown mid-stage checkpoints; the resumed stage ends where an uninterrupted one does', async () => {
    const reference = await trainDpo({ config, model: policy(), rows, runtime });
    const store = directoryCheckpointStore(dir);
    const controller = new AbortController();
    const error = await trainDpo({
      config,
      model: policy(),
      rows,
      runtime,
      hooks: {
        signal: controller.signal,
        checkpoints: store,
        onMetrics: (step) => {
          if (step === 6) controller.abort(SHUTDOWN);
        },
      },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StageAbortedError);
    const saved = await store.latest();
    expect(saved?.step).toBe(8);
    expect(trainerJsonFromFiles(saved!.files)).toMatchObject({ stage: 'dpo', step: 8, totalSteps: 12 });

    const resumed = await trainDpo({ config, model: policy(), rows, runtime, hooks: { checkpoints: store } });
    expect(resumed.step).toBe(12);
    expect(resumed.hyperparameters).toMatchObject({ resumedFrom: 8 });
    const a = resumed.model.params.get('wte.weight')!;
    const b = reference.model.params.get('wte.weight')!;
    expect(Math.max(...Array.from(a, (x, i) => Math.abs(x - b[i])))).toBeLessThan(1e-4);
    expect(resumed.summary[DpoMetrics.evalRewardsAccuracies]).toBeCloseTo(
      reference.summary[DpoMetrics.evalRewardsAccuracies],
      4,
    );
  });

  test('refuses what cannot run, naming the field', async () => {
    await expect(trainDpo({ config: { beta: 0 }, model: policy(), rows, runtime })).rejects.toThrow(/beta/);
    await expect(
      trainDpo({ config: { lossType: 'kto' as 'ipo' }, model: policy(), rows, runtime }),
    ).rejects.toThrow(/lossType/);
    await expect(
      trainDpo({ config: { maxSeqLen: 4 }, model: policy(), rows: rows.slice(0, 4), runtime }),
    ).rejects.toThrow('dpo: no ranking fits within maxSeqLen');
  });
});
