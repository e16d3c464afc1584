// Pairwise verdicts already judged are not judged again: a judge wrapped with a cache answers each request from
// it when it can and judges the rest in chunks, storing every answer as soon as its chunk is judged, so an
// interrupted evaluation loses at most one chunk of judge calls.
import { createHash } from 'node:crypto';
import type { JudgeRequest, PairwiseJudge } from './position-bias.js';

/** P(first is better) per request key. */
export interface JudgmentCache {
  get(key: string): Promise<number | undefined>;
  set(key: string, preference: number): Promise<void>;
}

/** What the cached judge did: requests judged now, and requests answered from the cache or by a duplicate. */
export interface JudgmentCounts {
  judged: number;
  reused: number;
}

export interface CachedJudgeOptions {
  /** Everything that decides the judge's answers besides the request (judge weights' key, template, answers). */
  judge: string;
  /** Requests per judge call (default 32). */
  chunkSize?: number;
}

/** sha256 of the judge identity and the request: equal exactly when the judge would answer the same. */
export function judgmentKey(judge: string, request: JudgeRequest): string {
  const canonical = JSON.stringify([judge, request.prompt, request.first, request.second]);
  return createHash('sha256').update(canonical).digest('hex');
}

/** `judge` answering from `cache` where it can; `counts` adds up what it did. */
export function cachedJudge(
  judge: PairwiseJudge,
  cache: JudgmentCache,
  options: CachedJudgeOptions,
): { judge: PairwiseJudge; counts: JudgmentCounts } {
  const counts: JudgmentCounts = { judged: 0, reused: 0 };
  const chunkSize = options.chunkSize ?? 32;
  if (!(Number.isInteger(chunkSize) && chunkSize >= 1))
    throw new RangeError(`cachedJudge: chunkSize must be a positive integer, got ${chunkSize}`);
  const wrapped: PairwiseJudge = async (requests) => {
    const keys = requests.map((r) => judgmentKey(options.judge, r));
    const answers: (number | undefined)[] = [];
    for (const key of keys) answers.push(await cache.get(key));
    // A request asked twice (two models answering alike) is judged once.
    const missing = new Map<string, number[]>();
    answers.forEach((answer, i) => {
      if (answer === undefined) missing.set(keys[i], [...(missing.get(keys[i]) ?? []), i]);
    });
    const unique = [...missing.values()];
    counts.reused += requests.length - unique.length;
    for (let start = 0; start < unique.length; start += chunkSize) {
      const chunk = unique.slice(start, start + chunkSize);
      const judged = await judge(chunk.map(([i]) => requests[i]));
      if (judged.length !== chunk.length)
        throw new RangeError(`judge answered ${judged.length} of ${chunk.length} requests`);
      for (const [k, indices] of chunk.entries()) {
        await cache.set(keys[indices[0]], judged[k]);
        for (const i of indices) answers[i] = judged[k];
      }
      counts.judged += chunk.length;
    }
    return answers as number[];
  };
  return { judge: wrapped, counts };
}

/** A JudgmentCache in memory (tests, one process). */
export function memoryJudgmentCache(): JudgmentCache & { readonly size: number } {
  const entries = new Map<string, number>();
  return {
    get: async (key) => entries.get(key),
    set: async (key, preference) => {
      entries.set(key, preference);
    },
    get size() {
      return entries.size;
    },
  };
}
