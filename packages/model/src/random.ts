// A small seedable PRNG: xoshiro128** (Blackman & Vigna, https://prng.di.unimi.it/) seeded
// through splitmix32, with Box-Muller for normals. Deterministic across runs and platforms.

/** A deterministic stream of random numbers. */
export interface Rng {
  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number;
  /** Uniform in [0, 1). */
  uniform(): number;
  /** Standard normal N(0, 1). */
  normal(): number;
}

/** splitmix32 step: spreads a 32-bit seed over the xoshiro state (avoids all-zero states). */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a hash of a string to 32 bits; used to give each named stream its own seed. */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Creates a generator from an integer seed (any safe integer) and an optional stream name:
 * the same (seed, stream) always yields the same sequence.
 */
export function createRng(seed: number, stream = ''): Rng {
  if (!Number.isSafeInteger(seed)) throw new Error(`rng seed must be a safe integer, got ${seed}`);
  const mix = { s: (seed >>> 0) ^ hashString(stream) ^ Math.floor(seed / 2 ** 32) };
  const nextUint32 = xoshiro128StarStar(splitmix32(mix), splitmix32(mix), splitmix32(mix), splitmix32(mix));
  let spare: number | null = null;

  const uniform = (): number => nextUint32() / 2 ** 32;
  // Box-Muller: two uniforms -> two independent normals; the second is kept for the next call.
  const normal = (): number => {
    if (spare !== null) {
      const z = spare;
      spare = null;
      return z;
    }
    const u1 = (nextUint32() + 1) / 2 ** 32; // in (0, 1], so log(u1) is finite
    const u2 = uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  };
  return { nextUint32, uniform, normal };
}

/** xoshiro128** from a raw 128-bit state (not all zero): returns the next 32-bit output on each call. */
export function xoshiro128StarStar(a: number, b: number, c: number, d: number): () => number {
  return () => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result;
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
