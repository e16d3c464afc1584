import { ByteTokenizer } from '@rlhf/model';
import { expect, test } from 'vitest';
import { maxResponses, rankedBatch, rankedPairs, rankedResponses, tokenizeRanking } from './ranked.js';

test('a ranking of K yields its C(K,2) (better, worse) pairs; a preference row is K = 2', () => {
  expect(rankedPairs(4)).toEqual([
    [0, 1],
    [0, 2],
    [0, 3],
    [1, 2],
    [1, 3],
    [2, 3],
  ]);
  expect(rankedResponses({ prompt: 'p', chosen: 'a', rejected: 'b' })).toEqual({
    prompt: 'p',
    responses: ['a', 'b'],
  });
});

test('a batch lays rankings out in K slots each; pairs of a shorter ranking weigh 1/C(k,2), empty slots 0', () => {
  const t = new ByteTokenizer();
  const examples = [
    tokenizeRanking(t, { prompt: 'p', responses: ['a', 'b', 'c'] }, 16)!.example,
    tokenizeRanking(t, { prompt: 'q', chosen: 'x', rejected: 'y' }, 16)!.example,
  ];
  expect(examples[0].prompt).toEqual([t.bosId, 112]);
  expect(examples[0].responses[0]).toEqual([97, t.eosId]);
  expect(maxResponses(examples)).toBe(3);
  const batch = rankedBatch(examples, [1, 0], 3);
  expect(batch.slots).toEqual([
    { example: 1, response: 0 },
    { example: 1, response: 1 },
    null,
    { example: 0, response: 0 },
    { example: 0, response: 1 },
    { example: 0, response: 2 },
  ]);
  expect(batch.better).toEqual([0, 0, 1, 3, 3, 4]);
  expect(batch.worse).toEqual([1, 2, 2, 4, 5, 5]);
  // 'q' has one real pair (weight 1); 'p' has three (1/3 each).
  expect(batch.weight).toEqual([1, 0, 0, 1 / 3, 1 / 3, 1 / 3]);
  // A prompt that fills the context leaves no room for a response: the ranking is dropped.
  expect(tokenizeRanking(t, { prompt: 'long prompt', chosen: 'x', rejected: 'y' }, 4)).toBeNull();
});
