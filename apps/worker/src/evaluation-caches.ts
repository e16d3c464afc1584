// The evaluation caches in the artifact store: generation batches and pairwise judge answers, one file each,
// written atomically as soon as they exist. A killed evaluation worker's job resumes from them, and a later
// evaluation with the same model, prompts, seed and sampling (or the same judge request) reuses them.
import type { ArtifactStore } from '@rlhf/artifacts';
import type { JudgmentCache, SampleCache } from '@rlhf/eval';

/** Cached generation batches under `<prefix>/samples/`. */
export function artifactSampleCache(artifacts: ArtifactStore, prefix: string): SampleCache {
  const at = (key: string) => `${prefix}/samples/${key}.json`;
  return {
    async get(key) {
      if (!(await artifacts.exists(at(key)))) return undefined;
      return JSON.parse(await artifacts.getText(at(key))) as number[][];
    },
    async set(key, tokens) {
      await artifacts.put(at(key), JSON.stringify(tokens));
    },
  };
}

/** Cached judge answers (P(first better)) under `<prefix>/judgments/`. */
export function artifactJudgmentCache(artifacts: ArtifactStore, prefix: string): JudgmentCache {
  const at = (key: string) => `${prefix}/judgments/${key}.json`;
  return {
    async get(key) {
      if (!(await artifacts.exists(at(key)))) return undefined;
      return JSON.parse(await artifacts.getText(at(key))) as number;
    },
    async set(key, preference) {
      await artifacts.put(at(key), JSON.stringify(preference));
    },
  };
}
