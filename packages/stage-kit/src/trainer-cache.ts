// Trainers (one ONNX Runtime session each) by fused length K: a stage's calls come in a few lengths (the
// configured one, a shorter one ending on an evaluation step, budget-sized ones), and a session per length is
// built once; at most `keep` stay alive, the oldest released when another length is needed.
import type { createTrainer, Trainer, TrainerState } from '@rlhf/graph';

/** What a trainer starts from: createTrainer's init (moments and step optional: zero). */
export type TrainerInit = Parameters<typeof createTrainer>[2];

export interface TrainerCache {
  /** The trainer for K fused steps, holding `state` (a kept one is restored to it, a new one created from it). */
  get(k: number, state: TrainerState): Promise<Trainer>;
  /** The first trainer, for K fused steps, from `init` (e.g. a fresh start without moments). */
  start(k: number, init: TrainerInit): Promise<Trainer>;
  release(): Promise<void>;
}

export function trainerCache(
  create: (k: number, init: TrainerInit) => Promise<Trainer>,
  keep = 2,
): TrainerCache {
  const trainers = new Map<number, Trainer>();
  const add = async (k: number, init: TrainerInit) => {
    if (trainers.size >= keep) {
      const [oldest, dropped] = [...trainers][0];
      trainers.delete(oldest);
      await dropped.release();
    }
    const created = await create(k, init);
    trainers.set(k, created);
    return created;
  };
  return {
    async get(k, state) {
      const kept = trainers.get(k);
      if (!kept) return add(k, state);
      kept.restore(state);
      return kept;
    },
    start: add,
    async release() {
      for (const trainer of trainers.values()) await trainer.release();
      trainers.clear();
    },
  };
}
