// Per-checkpoint evaluation on real parts (artifact directory, checkpoint directory, ONNX Runtime CPU, tiny random
// models): a runner whose job carries checkpointEval has each checkpoint that passes a multiple of `every` steps
// compared, reported as eval/win_rate at that step; a checkpoint that cannot be compared is logged, not fatal.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createArtifactStore } from '@rlhf/artifacts';
import { createLogger } from '@rlhf/config';
import { resolveSftConfig, resolveStageConfig, type StageJobData } from '@rlhf/contracts';
import { initParams, presetConfig } from '@rlhf/model';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { directoryCheckpointStore, modelFiles } from '@rlhf/stage-kit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { withCheckpointEvals } from './checkpoint-eval.js';
import type { StageContext } from './context.js';

let runtime: Runtime;
let dir: string;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
  dir = await mkdtemp(join(tmpdir(), 'rlhf-checkpoint-eval-'));
});
afterAll(async () => {
  await runtime?.close();
  await rm(dir, { recursive: true, force: true });
});

test('checkpoints past a multiple of `every` are compared; one that cannot be is logged and the stage goes on', async () => {
  const artifacts = createArtifactStore(join(dir, 'artifacts'));
  const config = presetConfig('tiny');
  const against = await modelFiles({ config, params: initParams(config, 2) }, {});
  for (const [file, bytes] of Object.entries(against)) await artifacts.put(`models/b/${file}`, bytes);
  const prompts = Array.from({ length: 6 }, (_, i) => JSON.stringify({ prompt: `sort: ${i} ${9 - i}` }));
  await artifacts.put('datasets/t/prompts.jsonl', `${prompts.join('\n')}\n`);
  const job: StageJobData = {
    runId: 'run1',
    stageId: 'sft1',
    teamId: 'team1',
    modelPreset: 'tiny',
    kind: 'sft',
    config: resolveSftConfig({ maxSteps: 10 }),
    dataset: { id: 'd', key: 'datasets/t/sft.jsonl', kind: 'sft' },
    inputs: {},
    checkpointEval: {
      config: resolveStageConfig('eval', {
        against: { modelId: 'b' },
        judge: { type: 'task', name: 'starts-with-digit' },
        maxNewTokens: 4,
        checkpoints: { every: 4, maxPrompts: 5 },
      }),
      datasetKey: 'datasets/t/prompts.jsonl',
      inputs: { against: 'models/b' },
      names: { policy: 'run:run1:sft', against: 'model:b' },
    },
  };
  const policy = await modelFiles({ config, params: initParams(config, 1) }, {});
  const metrics: [number, Record<string, number>][] = [];
  const logged: string[] = [];
  const ctx: StageContext = {
    runtime,
    artifacts,
    tasks: { 'starts-with-digit': (_prompt, response) => (/^[0-9]/.test(response) ? 1 : 0) },
    logger: createLogger('checkpoint-eval-test', 'silent'),
    hooks: {
      checkpoints: directoryCheckpointStore(join(dir, 'checkpoints')),
      onMetrics: (step, values) => void metrics.push([step, values]),
      log: (message) => void logged.push(message),
    },
    saveFinal: async () => 'final',
  };
  // A runner that saves what a trainer would: full weights at 2, 4, 6; at 8 a checkpoint without them.
  const runners = withCheckpointEvals({
    async sft(_job, { hooks }) {
      for (const step of [2, 4, 6]) await hooks.checkpoints!.save(step, policy);
      await hooks.checkpoints!.save(8, { 'adapter_model.safetensors': new Uint8Array(8) });
      return { stageId: 'sft1', kind: 'sft', modelKey: 'final', step: 8 };
    },
  });
  await runners.sft!(job, ctx);
  expect(metrics.map(([step]) => step)).toEqual([4]);
  const [[, values]] = metrics;
  expect(Object.keys(values).sort()).toEqual(['eval/win_rate', 'eval/win_rate_lower', 'eval/win_rate_upper']);
  expect(values['eval/win_rate_lower']).toBeLessThanOrEqual(values['eval/win_rate']);
  expect(values['eval/win_rate']).toBeLessThanOrEqual(values['eval/win_rate_upper']);
  expect(logged).toEqual([expect.stringMatching(/^checkpoint evaluation at step 8 failed: /)]);
  // The checkpoints themselves were saved as usual.
  expect((await ctx.hooks.checkpoints!.latest())?.step).toBe(8);
});
