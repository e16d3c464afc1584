// An eval stage's cancel reaches compareModels inside its generations (issue 18): they run as budget-sized calls
// of rows (stage-kit budgetedGenerator) with the stage's signal checked between them.
import { groundTruthScore } from '@rlhf/examples';
import { type GptConfig, initParams, presetConfig } from '@rlhf/model';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { StepInterrupted } from '@rlhf/stage-kit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { compareModels } from './compare.js';

const config: GptConfig = presetConfig('tiny');
const model = { config, params: initParams(config, 3) };

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

test('an aborted signal stops the generations between their calls, before any judging', async () => {
  const controller = new AbortController();
  controller.abort('cancel');
  const judged: number[] = [];
  const result = await compareModels({
    runtime,
    models: [
      { name: 'a', model },
      { name: 'b', model, seeds: [2] },
    ],
    prompts: Array.from({ length: 64 }, (_, i) => `sort ${i} 3 1 2`),
    seeds: [1],
    sampling: { maxNewTokens: 16, temperature: 1 },
    judge: {
      kind: 'score',
      score: (prompt, response) => {
        judged.push(1);
        return groundTruthScore(prompt, response);
      },
    },
    signal: controller.signal,
  }).catch((error: unknown) => error);
  expect(result).toBeInstanceOf(StepInterrupted);
  expect((result as StepInterrupted).reason).toBe('cancel');
  expect((result as StepInterrupted).clean).toBe(true);
  expect(judged).toEqual([]);
});
