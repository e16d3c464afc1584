// Parameters held in the ORT thread (Runtime.keep) while a caller keeps passing the same arrays, so repeated runs
// (generate calls) do not copy every weight across the thread boundary again.
import type { KeptFeeds, Runtime } from '@rlhf/runtime';
import { type HostParams, type ModelDtype, paramFeeds } from './feeds.js';
import type { GptConfig } from './config.js';

export interface ResidentParams {
  /**
   * Runs `use` with the kept feeds of `params`, keeping them first unless they are the same Map holding the same
   * arrays as last time. Params are values: writing into an array already passed is not seen (pass new arrays;
   * the in-place trainer hands back new arrays after each step, the old ones detached).
   */
  with<T>(params: HostParams, use: (kept: KeptFeeds) => Promise<T>): Promise<T>;
  release(): Promise<void>;
}

interface Entry {
  map: HostParams;
  arrays: (Float32Array | Float64Array)[];
  kept: Promise<KeptFeeds>;
  users: number;
  replaced: boolean;
}

export function residentParams(runtime: Runtime, config: GptConfig, dtype: ModelDtype): ResidentParams {
  let current: Entry | undefined;
  // Nothing to free when keeping failed or the runtime is closed.
  const free = (entry: Entry) => entry.kept.then((kept) => kept.release()).catch(() => undefined);
  const same = (entry: Entry, params: HostParams) =>
    entry.map === params &&
    entry.arrays.length === params.size &&
    [...params.values()].every((a, i) => a === entry.arrays[i] && a.length > 0);
  return {
    async with(params, use) {
      if (!current || !same(current, params)) {
        const old = current;
        current = {
          map: params,
          arrays: [...params.values()],
          kept: runtime.keep(paramFeeds(config, params, dtype)),
          users: 0,
          replaced: false,
        };
        if (old) {
          old.replaced = true;
          if (old.users === 0) await free(old); // else the last run using it frees it
        }
      }
      const entry = current;
      entry.kept.catch(() => {
        if (current === entry) current = undefined; // the next call keeps them again
      });
      entry.users++;
      try {
        return await use(await entry.kept);
      } finally {
        entry.users--;
        if (entry.replaced && entry.users === 0) await free(entry);
      }
    },
    async release() {
      if (current) await free(current);
      current = undefined;
    },
  };
}
