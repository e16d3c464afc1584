// What an interrupted or repeated evaluation reuses: generation batches from a sample cache (the same samples as
// generating again), judge answers from a judgment cache (the judge not called for them), and batch scorers
// that see each response with its prompt's index. Untrained tiny models: only determinism matters here.
import { initParams, presetConfig } from '@rlhf/model';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchSeed, compareModels, type EvalJudge } from './compare.js';
import { cachedJudge, judgmentKey, memoryJudgmentCache } from './judgment-cache.js';
import type { JudgeRequest } from './position-bias.js';
import { countedSampleCache, memorySampleCache } from './sample-cache.js';

let runtime: Runtime;
const config = presetConfig('tiny');
const models = [
  { name: 'a', key: 'models/a', model: { config, params: initParams(config, 1) } },
  { name: 'b', key: 'models/b', model: { config, params: initParams(config, 2) } },
];
const prompts = Array.from({ length: 10 }, (_, i) => `sort ${i} ${9 - i} 4:`);
const sampling = { maxNewTokens: 6, temperature: 1 };
const lengthJudge: EvalJudge = { kind: 'score', score: (_, response) => response.length };

beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

describe('generation batches', () => {
  it('a cached evaluation gives the samples generating again gives, and reuses every batch', async () => {
    const store = memorySampleCache();
    const first = countedSampleCache(store);
    const input = {
      runtime,
      models,
      prompts,
      seeds: [1, 2],
      sampling,
      judge: lengthJudge,
      generationBatch: 4,
    };
    const fresh = await compareModels({ ...input, cache: first.cache });
    // 10 prompts in batches of 4: 3 batches per seed and model.
    expect(first.counts).toEqual({ reused: 0, generated: 12 });
    expect(store.size).toBe(12);
    const again = countedSampleCache(store);
    const reused = await compareModels({ ...input, cache: again.cache });
    expect(again.counts).toEqual({ reused: 12, generated: 0 });
    expect(reused.pairs).toEqual(fresh.pairs);
    const uncached = await compareModels(input);
    expect(uncached.pairs).toEqual(fresh.pairs);
    // A shorter prompt set shares its whole batches with the longer one.
    const shorter = countedSampleCache(store);
    await compareModels({ ...input, prompts: prompts.slice(0, 8), cache: shorter.cache });
    expect(shorter.counts).toEqual({ reused: 8, generated: 0 });
  }, 120_000);

  it('seeds each batch from its seed and index (independent streams, same for the same batch)', () => {
    expect(batchSeed(1, 0)).toBe(batchSeed(1, 0));
    const seeds = new Set([0, 1, 2, 3].flatMap((batch) => [1, 2].map((seed) => batchSeed(seed, batch))));
    expect(seeds.size).toBe(8);
    for (const s of seeds) expect(s >= 0 && s < 2 ** 31).toBe(true);
  });

  it('a batch scorer gets each response with its prompt index, seed-major', async () => {
    const seen: number[][] = [];
    const result = await compareModels({
      runtime,
      models,
      prompts,
      seeds: [1, 2],
      sampling,
      judge: {
        kind: 'batch_score',
        score: async (indices, responses) => {
          seen.push([...indices]);
          return responses.map((r, k) => r.length + indices[k]);
        },
      },
    });
    const order = [...prompts.keys(), ...prompts.keys()];
    expect(seen).toEqual([order, order]);
    const [pair] = result.pairs;
    for (const row of pair.rows) {
      expect(row.scoreA).toBe(row.responseA.length + row.promptIndex);
      expect(row.scoreB).toBe(row.responseB.length + row.promptIndex);
    }
  }, 120_000);
});

describe('cachedJudge', () => {
  const request = (i: number): JudgeRequest => ({ prompt: `p${i}`, first: `f${i}`, second: `s${i}` });
  it('judges only what the cache lacks, in chunks, and answers the rest from it', async () => {
    const calls: number[] = [];
    const judge = (requests: readonly JudgeRequest[]) => {
      calls.push(requests.length);
      return requests.map((r) => Number(r.prompt.slice(1)) / 100);
    };
    const cache = memoryJudgmentCache();
    const first = cachedJudge(judge, cache, { judge: 'judge-1', chunkSize: 3 });
    expect(await first.judge([0, 1, 2, 3, 4, 5, 6].map(request))).toEqual([
      0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06,
    ]);
    expect(calls).toEqual([3, 3, 1]);
    expect(first.counts).toEqual({ judged: 7, reused: 0 });
    const second = cachedJudge(judge, cache, { judge: 'judge-1', chunkSize: 3 });
    // 7 is asked twice: judged once.
    expect(await second.judge([5, 7, 1, 8, 7].map(request))).toEqual([0.05, 0.07, 0.01, 0.08, 0.07]);
    expect(calls).toEqual([3, 3, 1, 2]);
    expect(second.counts).toEqual({ judged: 2, reused: 3 });
    // Another judge (weights, template) shares nothing.
    expect(judgmentKey('judge-2', request(1))).not.toBe(judgmentKey('judge-1', request(1)));
    // Fields are not confused by where one ends and the next begins.
    expect(judgmentKey('j', { prompt: 'a', first: 'bc', second: '' })).not.toBe(
      judgmentKey('j', { prompt: 'ab', first: 'c', second: '' }),
    );
  });
});
