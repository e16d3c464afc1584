// The budgeted scorer (issue 18): a batch scored as row calls gives the unsplit call's log-probs, entropy, values
// and scores, and an abort is seen between the calls.
import { createScorer, type GptConfig, initParams, presetConfig, type ScoreResult } from '@rlhf/model';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { StepInterrupted } from './budget.js';
import { budgetedScorer } from './scoring.js';

const config: GptConfig = { ...presetConfig('tiny'), scalarHead: true };
const params = initParams(config, 5);

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

// 11 rows: prompts of 1 to 5 tokens, responses of 8 columns with 3 to 8 real tokens.
const N = 8;
const prompts = Array.from({ length: 11 }, (_, r) =>
  Array.from({ length: 1 + (r % 5) }, (_, t) => (r * 5 + t) % 250),
);
const responseMask = prompts.map((_, r) => Array.from({ length: N }, (_, t) => (t < 3 + (r % 6) ? 1 : 0)));
const responses = responseMask.map((row, r) => row.map((m, t) => (m ? (r * 11 + t * 7) % 250 : 0)));
const request = { params, prompts, padId: 0, responses, responseMask, temperature: 0.7 };

const gap = (a: number[] | number[][], b: number[] | number[][]) =>
  Math.max(...a.flat().map((x, i) => Math.abs(x - (b.flat()[i] as number))));

test('one row per call gives the unsplit call’s log-probs, entropy, values and scores', async () => {
  const scorer = await createScorer(runtime, config, {
    outputs: ['logprobs', 'entropy', 'values', 'scores'],
  });
  try {
    const whole: ScoreResult = await scorer.score(request);
    const calls: number[] = [];
    const counted = {
      score: (r: typeof request) => {
        calls.push(r.prompts.length);
        return scorer.score(r);
      },
      release: async () => {},
    };
    const split = await budgetedScorer(counted, { budgetSeconds: 0 }).score(request);
    expect(calls).toEqual(prompts.map(() => 1));
    const gaps = {
      logprobs: gap(split.logprobs!, whole.logprobs!),
      entropy: gap(split.entropy!, whole.entropy!),
      values: gap(split.values!, whole.values!),
      scores: gap(split.scores!, whole.scores!),
    };
    console.log(JSON.stringify(gaps));
    for (const value of Object.values(gaps)) expect(value).toBeLessThan(1e-5);
    expect(split.scores).toHaveLength(prompts.length);
  } finally {
    await scorer.release();
  }
});

test('an abort is seen between calls: StepInterrupted, clean', async () => {
  const scorer = await createScorer(runtime, config, { outputs: ['scores'] });
  try {
    const controller = new AbortController();
    controller.abort('cancel');
    const result = await budgetedScorer(scorer, { budgetSeconds: 0, signal: controller.signal })
      .score(request)
      .catch((error: unknown) => error);
    expect(result).toBeInstanceOf(StepInterrupted);
    expect((result as StepInterrupted).clean).toBe(true);
  } finally {
    await scorer.release();
  }
});
