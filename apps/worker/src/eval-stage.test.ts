// The eval stage runner on real parts (an artifact directory, ONNX Runtime on the CPU, two tiny random models): it
// reports its verdict as metrics at step 1 and writes the verdicts, the gate and its record under final/; a job
// re-taken after its one step reads the result from the checkpoint instead of generating again.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createArtifactStore } from '@rlhf/artifacts';
import { createLogger } from '@rlhf/config';
import { type EvalJobData, type EvaluationResult, resolveStageConfig } from '@rlhf/contracts';
import { initParams, presetConfig } from '@rlhf/model';
import { HYPERPARAMETERS_FILE } from '@rlhf/queue';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { directoryCheckpointStore, modelFiles } from '@rlhf/stage-kit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { StageContext } from './context.js';
import { evalStage } from './eval-stage.js';

let runtime: Runtime;
let dir: string;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
  dir = await mkdtemp(join(tmpdir(), 'rlhf-eval-stage-'));
});
afterAll(async () => {
  await runtime?.close();
  await rm(dir, { recursive: true, force: true });
});

// A programmatic task: 1 for a response that starts with a digit.
const tasks = {
  'starts-with-digit': (_prompt: string, response: string) => (/^[0-9]/.test(response) ? 1 : 0),
};

test('an eval stage reports its verdict, writes it under final/, and a re-taken job reads it from its checkpoint', async () => {
  const artifacts = createArtifactStore(join(dir, 'artifacts'));
  const config = presetConfig('tiny');
  for (const [name, seed] of [
    ['a', 1],
    ['b', 2],
  ] as const) {
    const files = await modelFiles({ config, params: initParams(config, seed) }, {});
    for (const [file, bytes] of Object.entries(files)) await artifacts.put(`models/${name}/${file}`, bytes);
  }
  const prompts = Array.from({ length: 12 }, (_, i) =>
    JSON.stringify({ prompt: `sort: ${i % 10} ${(i * 7) % 10}` }),
  );
  await artifacts.put('datasets/t/prompts.jsonl', `${prompts.join('\n')}\n`);
  const job: EvalJobData = {
    runId: 'run1',
    stageId: 'stage1',
    teamId: 'team1',
    modelPreset: 'tiny',
    kind: 'eval',
    config: resolveStageConfig('eval', {
      against: { modelId: 'b' },
      judge: { type: 'task', name: 'starts-with-digit' },
      maxPrompts: 10,
      seeds: [1, 2],
      maxNewTokens: 4,
      gate: { minWinRate: 0.5, rule: 'point' },
    }),
    dataset: { id: 'prompts', key: 'datasets/t/prompts.jsonl', kind: 'prompt' },
    inputs: { policy: 'models/a', against: 'models/b' },
    names: { policy: 'model:a', against: 'model:b' },
  };
  const checkpoints = directoryCheckpointStore(join(dir, 'checkpoints'));
  const run = async (finalDir: string) => {
    const metrics: [number, Record<string, number>][] = [];
    const ctx: StageContext = {
      runtime,
      artifacts,
      tasks,
      logger: createLogger('eval-stage-test', 'silent'),
      hooks: { checkpoints, onMetrics: (step, values) => void metrics.push([step, values]) },
      async saveFinal(files) {
        for (const [name, bytes] of Object.entries(files)) await artifacts.put(`${finalDir}/${name}`, bytes);
        return finalDir;
      },
    };
    const result = await evalStage(job, ctx);
    const read = async (name: string) => JSON.parse(await artifacts.getText(`${finalDir}/${name}`));
    return { result, metrics, evaluation: (await read('evaluation.json')) as EvaluationResult, read };
  };

  const first = await run('final1');
  expect(first.result).toEqual({ stageId: 'stage1', kind: 'eval', modelKey: 'final1', step: 1 });
  const [pair] = first.evaluation.pairs;
  expect(pair).toMatchObject({ a: 'model:a', b: 'model:b' });
  expect(pair.rows).toHaveLength(20); // 10 prompts × 2 seeds
  expect(pair.wins + pair.ties + pair.losses).toBe(20);
  // The win rate from the verdict rows themselves (ties half), and by the same numbers in the metrics.
  const score = (o: string) => (o === 'win' ? 1 : o === 'tie' ? 0.5 : 0);
  expect(pair.winRate).toBeCloseTo(pair.rows.reduce((sum, r) => sum + score(r.outcome), 0) / 20, 12);
  for (const row of pair.rows) {
    const expected = row.scoreA! > row.scoreB! ? 'win' : row.scoreA! < row.scoreB! ? 'loss' : 'tie';
    expect(row.outcome).toBe(expected);
    expect(row.scoreA).toBe(tasks['starts-with-digit'](row.prompt, row.responseA));
  }
  expect(first.metrics).toEqual([
    [
      1,
      {
        'eval/win_rate': pair.winRate,
        'eval/win_rate_lower': pair.interval.lower,
        'eval/win_rate_upper': pair.interval.upper,
        'eval/wins': pair.wins,
        'eval/ties': pair.ties,
        'eval/losses': pair.losses,
        'eval/gate_passed': pair.winRate >= 0.5 ? 1 : 0,
      },
    ],
  ]);
  const gate = await first.read('gate.json');
  expect(gate).toMatchObject({
    passed: pair.winRate >= 0.5,
    winRate: pair.winRate,
    minWinRate: 0.5,
    rule: 'point',
  });
  const record = await first.read(HYPERPARAMETERS_FILE);
  expect(record).toMatchObject({ prompts: 10, seeds: [1, 2], gate: { passed: pair.winRate >= 0.5 } });
  expect(first.evaluation.comparisons).toHaveLength(20);

  // Re-taken after its step: the models are gone, the checkpoint's result is written again, nothing re-reported.
  await rm(join(dir, 'artifacts', 'models'), { recursive: true });
  const again = await run('final2');
  expect(again.evaluation).toEqual(first.evaluation);
  expect(again.metrics).toEqual([]);
  expect(await again.read('gate.json')).toEqual(gate);
});

test('a grader judge scores each response against its prompt row', async () => {
  const artifacts = createArtifactStore(join(dir, 'grader-artifacts'));
  const config = presetConfig('tiny');
  for (const [name, seed] of [
    ['a', 3],
    ['b', 4],
  ] as const) {
    const files = await modelFiles({ config, params: initParams(config, seed) }, {});
    for (const [file, bytes] of Object.entries(files)) await artifacts.put(`models/${name}/${file}`, bytes);
  }
  // The grader reads each row's `answer`: a response containing it scores 1.
  const rows = Array.from({ length: 8 }, (_, i) =>
    JSON.stringify({ prompt: `sort: ${i} 1`, answer: `${i}` }),
  );
  await artifacts.put('datasets/t/rows.jsonl', `${rows.join('\n')}\n`);
  const job: EvalJobData = {
    runId: 'run2',
    stageId: 'stage2',
    teamId: 'team1',
    modelPreset: 'tiny',
    kind: 'eval',
    config: resolveStageConfig('eval', {
      against: { modelId: 'b' },
      judge: {
        type: 'grader',
        grader: { type: 'string_check', name: 'has-answer', operation: 'like', reference: '{{item.answer}}' },
      },
      maxNewTokens: 6,
      seeds: [1, 2, 3],
    }),
    dataset: { id: 'rows', key: 'datasets/t/rows.jsonl', kind: 'prompt' },
    inputs: { policy: 'models/a', against: 'models/b' },
    names: { policy: 'model:a', against: 'model:b' },
  };
  const ctx: StageContext = {
    runtime,
    artifacts,
    tasks,
    logger: createLogger('eval-stage-test', 'silent'),
    hooks: {},
    saveFinal: async (files) => {
      for (const [name, bytes] of Object.entries(files)) await artifacts.put(`final3/${name}`, bytes);
      return 'final3';
    },
  };
  await evalStage(job, ctx);
  const evaluation = JSON.parse(await artifacts.getText('final3/evaluation.json')) as EvaluationResult;
  const [pair] = evaluation.pairs;
  expect(pair.rows).toHaveLength(24);
  for (const row of pair.rows) {
    const answer = row.prompt.slice('sort: '.length).split(' ')[0];
    expect(row.scoreA).toBe(row.responseA.includes(answer) ? 1 : 0);
    expect(row.scoreB).toBe(row.responseB.includes(answer) ? 1 : 0);
  }
});
