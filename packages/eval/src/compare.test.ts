// compareModels on the sort-digits task with the cached fixtures of @rlhf/ppo/testing: real generation on the
// CPU EP, judged by the task's ground truth, by a pairwise judge and by the fixture reward model.
import { generatePromptRows, groundTruthScore } from '@rlhf/examples';
import { meanGroundTruth, sftPolicy } from '@rlhf/ppo/testing';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import type { ModelWeights } from '@rlhf/stage-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareModels } from './compare.js';
import type { JudgeRequest } from './position-bias.js';
import { memorySampleCache, type SampleCache } from './sample-cache.js';

let runtime: Runtime;
let sft: ModelWeights;
const heldOut = generatePromptRows(96, { seed: 901 });
/** The text of a plain prompt row (the sort-digits rows have no chat form). */
function promptOf(row: object): string {
  const prompt = (row as { prompt?: unknown }).prompt;
  if (typeof prompt !== 'string') throw new Error('expected a plain prompt row');
  return prompt;
}
const prompts = heldOut.map(promptOf);
const sampling = { maxNewTokens: 12, temperature: 1 };

beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
  sft = await sftPolicy(runtime);
}, 600_000);
afterAll(() => runtime.close());

describe('compareModels on sort-digits', () => {
  it('finds SFT against itself with different seeds even: the ground-truth win rate interval holds 1/2', async () => {
    const result = await compareModels({
      runtime,
      models: [
        { name: 'sft-seeds-1-2', model: sft },
        { name: 'sft-seeds-101-102', model: sft, seeds: [101, 102] },
      ],
      prompts,
      seeds: [1, 2],
      sampling,
      judge: { kind: 'score', score: groundTruthScore },
    });
    const [pair] = result.pairs;
    const { winRate } = pair;
    console.log(
      `SFT vs SFT (ground truth): ${winRate.wins}/${winRate.ties}/${winRate.losses}, win rate ` +
        `${winRate.winRate.toFixed(3)} [${winRate.interval.lower.toFixed(3)}, ${winRate.interval.upper.toFixed(3)}], ` +
        `mean scores ${JSON.stringify(result.meanScores)}`,
    );
    expect(pair.rows).toHaveLength(192);
    expect(winRate.prompts).toBe(96);
    expect(winRate.interval.lower).toBeLessThan(0.5);
    expect(winRate.interval.upper).toBeGreaterThan(0.5);
    // The same seeds and prompts as the fixture's own measurement give the same samples, hence the same mean.
    const reference = await meanGroundTruth(runtime, sft, heldOut, [1, 2]);
    expect(result.meanScores!['sft-seeds-1-2']).toBeCloseTo(reference, 12);
    for (const row of pair.rows) {
      expect(row.scoreA).toBe(groundTruthScore(row.prompt, row.responseA));
      expect(row.outcome).toBe(
        row.scoreA! > row.scoreB! ? 'win' : row.scoreA! < row.scoreB! ? 'loss' : 'tie',
      );
    }
    expect(result.comparisons).toHaveLength(192);
  }, 600_000);

  it('judges pairwise in both orders and reports the judge’s position bias', async () => {
    // A ground-truth judge that adds 1 logit to whichever response it is shown first.
    const judge = (requests: readonly JudgeRequest[]) =>
      requests.map(
        (r) =>
          1 /
          (1 +
            Math.exp(
              -(4 * (groundTruthScore(r.prompt, r.first) - groundTruthScore(r.prompt, r.second)) + 1),
            )),
      );
    const result = await compareModels({
      runtime,
      models: [
        { name: 'a', model: sft },
        { name: 'b', model: sft, seeds: [7] },
      ],
      prompts: prompts.slice(0, 48),
      seeds: [3],
      sampling,
      judge: { kind: 'pairwise', judge, combine: 'averaged' },
    });
    const [pair] = result.pairs;
    const bias = pair.positionBias!;
    console.log(`pairwise judge on SFT samples: position bias ${JSON.stringify(bias)}`);
    expect(result.meanScores).toBeUndefined();
    expect(bias.favouredSecond).toBe(0);
    expect(bias.meanFirstPreference).toBeGreaterThan(0.5);
    // Averaged over both orders the bias cancels: each verdict is the ground truth's.
    for (const row of pair.rows) {
      const gap = groundTruthScore(row.prompt, row.responseA) - groundTruthScore(row.prompt, row.responseB);
      expect(row.outcome).toBe(gap > 0 ? 'win' : gap < 0 ? 'loss' : 'tie');
      expect(row.pAFirst).toBeGreaterThanOrEqual(0);
    }
  }, 600_000);

  it('reuses generations already done (same model key, prompts, seed, sampling) and gives the same verdicts', async () => {
    const memory = memorySampleCache();
    let sets = 0;
    let hits = 0;
    const cache: SampleCache = {
      get: async (key) => {
        const found = await memory.get(key);
        if (found) hits++;
        return found;
      },
      set: async (key, tokens) => {
        sets++;
        await memory.set(key, tokens);
      },
    };
    const run = (temperature: number) =>
      compareModels({
        runtime,
        models: [
          { name: 'a', model: sft, key: 'sft' },
          { name: 'b', model: sft, key: 'sft', seeds: [5, 6] },
          { name: 'c', model: sft, key: 'sft' },
        ],
        prompts: prompts.slice(0, 24),
        seeds: [1, 2],
        sampling: { maxNewTokens: 12, temperature },
        judge: { kind: 'score', score: groundTruthScore },
        cache,
      });
    const first = await run(1);
    // a and c are the same model with the same seeds: c's batches come from a's.
    expect([sets, hits]).toEqual([4, 2]);
    expect(first.pairs[1].rows.every((r) => r.responseA === r.responseB)).toBe(true);
    const again = await run(1);
    expect([sets, hits]).toEqual([4, 8]);
    expect(again.pairs.map((p) => p.rows)).toEqual(first.pairs.map((p) => p.rows));
    await run(0.7); // other sampling settings are other batches
    expect(sets).toBe(8);
    await expect(
      compareModels({
        runtime,
        models: [
          { name: 'a', model: sft },
          { name: 'b', model: sft },
        ],
        prompts,
        seeds: [1],
        sampling,
        judge: { kind: 'score', score: groundTruthScore },
        cache,
      }),
    ).rejects.toThrow(/a needs a key/);
  }, 600_000);

  it('refuses fewer than two models, empty prompts and mismatched seeds', async () => {
    const judge = { kind: 'score' as const, score: groundTruthScore };
    const base = { runtime, prompts, seeds: [1], sampling, judge };
    await expect(compareModels({ ...base, models: [{ name: 'a', model: sft }] })).rejects.toThrow(
      /two models/,
    );
    const two = [
      { name: 'a', model: sft },
      { name: 'b', model: sft },
    ];
    await expect(compareModels({ ...base, models: two, prompts: [] })).rejects.toThrow(/prompts is empty/);
    await expect(compareModels({ ...base, models: [two[0], { ...two[1], seeds: [1, 2] }] })).rejects.toThrow(
      /b has 2 seeds/,
    );
    await expect(
      compareModels({ ...base, models: two, judge: { kind: 'reward_model', model: sft } }),
    ).rejects.toThrow(/no scalar head/);
  }, 600_000);
});
