// The budgeted generator (issue 18): a batch split into row calls gives the one unsplit call's result, and an
// abort during a generation far longer than the budget is seen after the call under way.
import {
  createGenerator,
  type GenerateRequest,
  type GenerateResult,
  type Generator,
  type GptConfig,
  initParams,
  presetConfig,
} from '@rlhf/model';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { StepInterrupted } from './budget.js';
import { budgetedGenerator } from './generation.js';

const config: GptConfig = presetConfig('tiny');
const params = initParams(config, 7);

let runtime: Runtime;
let generator: Generator;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
  generator = await createGenerator(runtime, config);
});
afterAll(async () => {
  await generator.release();
  await runtime.close();
});

/** `generator` that records the rows of each call it passes on. */
function counted(inner: Generator): Generator & { calls: number[] } {
  const calls: number[] = [];
  return {
    calls,
    generate: (request) => {
      calls.push(request.prompts.length);
      return inner.generate(request);
    },
    release: async () => {},
  };
}

// Prompts of different lengths (1 to 6 tokens), so the calls left-pad to different widths.
const prompts = Array.from({ length: 13 }, (_, r) =>
  Array.from({ length: 1 + (r % 6) }, (_, t) => (r * 7 + t * 3) % config.vocabSize),
);
const request = (sampling: Partial<GenerateRequest>): GenerateRequest => ({
  params,
  prompts,
  maxNewTokens: 12,
  seed: 11,
  eosId: -1,
  padId: 0,
  ...sampling,
});

/** Largest |a − b| over the log-probs. */
const logprobGap = (a: GenerateResult, b: GenerateResult) =>
  Math.max(...a.logprobs.flatMap((row, r) => row.map((x, t) => Math.abs(x - b.logprobs[r][t]))));

describe('budgetedGenerator', () => {
  for (const [name, sampling] of [
    ['greedy', { temperature: 0 }],
    ['sampled (temperature 1)', { temperature: 1 }],
    ['top-k / top-p with top log-probs', { temperature: 0.8, topK: 20, topP: 0.9, topLogprobs: 3 }],
  ] as const)
    test(`${name}: one row per call gives the unsplit call's tokens, mask and log-probs`, async () => {
      // EOS: a token row 0 samples at step 4, so rows stop at different steps (the early stop is exercised).
      const free = await generator.generate({ ...request(sampling), eosId: -1 });
      const eos = { ...sampling, eosId: free.tokens[0][3] };
      const whole = await generator.generate(request(eos));
      const split = counted(generator);
      const logs: string[] = [];
      // A zero budget: every call is one row.
      const rows = await budgetedGenerator(split, { budgetSeconds: 0, log: (m) => logs.push(m) }).generate(
        request(eos),
      );
      expect(split.calls).toEqual(prompts.map(() => 1));
      expect(rows.tokens).toEqual(whole.tokens);
      expect(rows.mask).toEqual(whole.mask);
      expect(rows.finished).toEqual(whole.finished);
      // Top alternatives where the row is live (after its EOS they are the batch's leftovers, not defined).
      const live = (r: GenerateResult) => r.top?.ids.map((row, b) => row.filter((_, t) => r.mask[b][t]));
      expect(live(rows)).toEqual(live(whole));
      const gap = logprobGap(rows, whole);
      console.log(
        JSON.stringify({
          sampling: name,
          maxLogprobGap: gap,
          finished: whole.finished.filter(Boolean).length,
        }),
      );
      expect(gap).toBeLessThan(1e-5);
      expect(whole.finished).toContain(true);
      expect(new Set(whole.mask.map((m) => m.reduce((a, x) => a + x, 0))).size).toBeGreaterThan(1);
    });

  test('the pace carries over: after a measured call, a batch that fits the budget is one call', async () => {
    const split = counted(generator);
    const budgeted = budgetedGenerator(split, { budgetSeconds: 60 });
    await budgeted.generate(request({ temperature: 1 }));
    expect(split.calls).toEqual([1, 12]); // one row measured, then the other 12 (at most 2^k that fit) at once
    await budgeted.generate(request({ temperature: 1, seed: 12 }));
    expect(split.calls.slice(2)).toEqual([13]);
  });

  test('an abort during a generation far longer than the budget is seen after the call under way', async () => {
    const big: GenerateRequest = {
      ...request({ temperature: 1 }),
      prompts: Array.from({ length: 1024 }, (_, r) => prompts[r % prompts.length]),
      maxNewTokens: 56, // prompts of up to 6 tokens: within tiny's 64 positions; eosId -1: no row stops early
    };
    const budgetSeconds = 0.05;
    const controller = new AbortController();
    const logs: string[] = [];
    let abortedAt = 0;
    const started = performance.now();
    const result = await budgetedGenerator(generator, {
      budgetSeconds,
      signal: controller.signal,
      log: (message) => {
        logs.push(message);
        if (abortedAt === 0) {
          abortedAt = -1;
          // Past the first measured call: inside the budget-sized ones.
          setTimeout(() => {
            abortedAt = performance.now();
            controller.abort('cancel');
          }, 300);
        }
      },
    })
      .generate(big)
      .catch((error: unknown) => error);
    const latencySeconds = (performance.now() - abortedAt) / 1000;
    // The unsplit call: timed, as the bound's reference.
    const wholeStarted = performance.now();
    await generator.generate(big);
    const wholeSeconds = (performance.now() - wholeStarted) / 1000;
    console.log(
      JSON.stringify({ latencySeconds, wholeSeconds, stoppedAfter: (abortedAt - started) / 1000, logs }),
    );
    expect(result).toBeInstanceOf(StepInterrupted);
    expect((result as StepInterrupted).clean).toBe(true);
    expect((result as StepInterrupted).reason).toBe('cancel');
    // Calls sized to 0.05 s, with slack for 2 shared cores; the unsplit call (0.6 s on an idle CI machine, 8 s
    // under load) takes more than twice as long as the stop did.
    expect(latencySeconds).toBeLessThan(1);
    expect(latencySeconds).toBeLessThan(wholeSeconds / 2);
  }, 120_000);
});
