// Generations already done are not redone: one (model, prompts, seed, sampling) batch is one cache entry, the
// unit the generator is deterministic in (its uniforms are laid out per batch, so a prompt's sample depends on
// the batch it was drawn in). A worker backs this with its artifact store to resume an interrupted evaluation.
import { createHash } from 'node:crypto';

/** Sampled response tokens (EOS included where generated) per prompt of one batch, by batch key. */
export interface SampleCache {
  get(key: string): Promise<readonly (readonly number[])[] | undefined>;
  set(key: string, tokens: readonly (readonly number[])[]): Promise<void>;
}

/** What decides a batch's samples. `model` is the weights' content address (e.g. an artifact's modelKey). */
export interface SampleBatchIdentity {
  model: string;
  prompts: readonly (readonly number[])[];
  seed: number;
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
}

/** sha256 of the identity's canonical JSON: equal exactly when the generator would draw the same samples. */
export function sampleBatchKey(identity: SampleBatchIdentity): string {
  const { model, prompts, seed, maxNewTokens, temperature, topK, topP } = identity;
  const canonical = JSON.stringify({ model, prompts, seed, maxNewTokens, temperature, topK, topP });
  return createHash('sha256').update(canonical).digest('hex');
}

/** A SampleCache in memory (tests, one process). */
export function memorySampleCache(): SampleCache & { readonly size: number } {
  const entries = new Map<string, readonly (readonly number[])[]>();
  return {
    get: async (key) => entries.get(key),
    set: async (key, tokens) => {
      entries.set(key, tokens);
    },
    get size() {
      return entries.size;
    },
  };
}

/** What a counted cache saw: batches read from it, and batches generated and stored. */
export interface SampleCacheCounts {
  reused: number;
  generated: number;
}

/** `cache` with its hits and stores counted (how much of an evaluation was reused). */
export function countedSampleCache(cache: SampleCache): { cache: SampleCache; counts: SampleCacheCounts } {
  const counts: SampleCacheCounts = { reused: 0, generated: 0 };
  return {
    counts,
    cache: {
      get: async (key) => {
        const hit = await cache.get(key);
        if (hit !== undefined) counts.reused++;
        return hit;
      },
      set: async (key, tokens) => {
        await cache.set(key, tokens);
        counts.generated++;
      },
    },
  };
}
