// Host-side helpers: a seeded PRNG, learning-rate schedules.

/** A seeded PRNG (mulberry32) returning floats in [0, 1): reproducible inits and test data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type LrSchedule =
  | { kind: 'constant'; lr: number; warmupSteps?: number }
  | { kind: 'linear'; lr: number; warmupSteps?: number; totalSteps: number; minLr?: number }
  | { kind: 'cosine'; lr: number; warmupSteps?: number; totalSteps: number; minLr?: number };

/**
 * The learning rate at optimizer step `step` (0-based): linear warmup from 0 over warmupSteps, then constant,
 * linear decay, or cosine decay (Loshchilov & Hutter 2017, SGDR) to minLr at totalSteps.
 */
export function lrSchedule(schedule: LrSchedule): (step: number) => number {
  const warmup = schedule.warmupSteps ?? 0;
  return (step) => {
    if (step < warmup) return (schedule.lr * (step + 1)) / warmup;
    if (schedule.kind === 'constant') return schedule.lr;
    const minLr = schedule.minLr ?? 0;
    const progress = Math.min(1, (step - warmup) / Math.max(1, schedule.totalSteps - warmup));
    const decay = schedule.kind === 'linear' ? 1 - progress : 0.5 * (1 + Math.cos(Math.PI * progress));
    return minLr + (schedule.lr - minLr) * decay;
  };
}

/** Learning rates for optimizer steps start .. start + count - 1 (the [K] input of a fused train step). */
export function lrsFor(schedule: (step: number) => number, start: number, count: number): Float32Array {
  return Float32Array.from({ length: count }, (_, i) => schedule(start + i));
}
