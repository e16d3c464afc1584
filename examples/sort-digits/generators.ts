import type { PreferenceTextRow, PromptTextRow, RankedTextRow } from '@rlhf/contracts';
import { createRng, type Rng } from './random.js';
import { formatPrompt, formatResponse, groundTruthScore } from './task.js';

export interface DigitsOptions {
  /** Same seed, same rows. */
  seed?: number;
  /** Digits per prompt, drawn uniformly in [minDigits, maxDigits] (default 3..5); repeats allowed. */
  minDigits?: number;
  maxDigits?: number;
}

/** Row counts of the committed files (data/). */
export const DEFAULT_COUNTS = { sft: 2000, preference: 2000, ranked: 1000, prompt: 500 } as const;
/** Seeds of the committed files: one stream per file. */
export const DEFAULT_SEEDS = { sft: 1, preference: 2, ranked: 3, prompt: 4 } as const;

/** Ways to answer a prompt, from right to badly wrong; each returns the response text. */
const answers = {
  ideal: (sorted) => formatResponse(sorted),
  /** one adjacent pair of different digits out of order */
  swap: (sorted, _digits, rng) => {
    const at = [...sorted.keys()].filter((i) => i > 0 && sorted[i - 1] !== sorted[i]);
    if (at.length === 0) return formatResponse(sorted);
    const i = rng.pick(at);
    const out = [...sorted];
    [out[i - 1], out[i]] = [out[i], out[i - 1]];
    return formatResponse(out);
  },
  /** the prompt's order, unsorted */
  echo: (_sorted, digits) => formatResponse(digits),
  shuffle: (sorted, _digits, rng) => formatResponse(shuffled(sorted, rng)),
  reverse: (sorted) => formatResponse([...sorted].reverse()),
  /** sorted, one digit missing */
  drop: (sorted, _digits, rng) => {
    const gone = rng.int(sorted.length);
    return formatResponse(sorted.filter((_, i) => i !== gone));
  },
  /** sorted, one digit too many */
  extra: (sorted, _digits, rng) => formatResponse([...sorted, rng.int(10)].sort((a, b) => a - b)),
  /** sorted, one digit changed */
  replace: (sorted, _digits, rng) => {
    const out = [...sorted];
    const i = rng.int(out.length);
    out[i] = (out[i] + 1 + rng.int(9)) % 10;
    return formatResponse(out.sort((a, b) => a - b));
  },
  /** a fixed sorted answer: the classic reward hack */
  constant: () => ' 1 2 3 4',
  /** right digits, no spaces */
  squashed: (sorted) => sorted.join(''),
} satisfies Record<string, (sorted: number[], digits: number[], rng: Rng) => string>;

export type AnswerKind = keyof typeof answers;
export const ANSWER_KINDS = Object.keys(answers) as AnswerKind[];
/** The mistakes in the noisy share of the SFT data: near misses a policy can learn to avoid. */
const SFT_MISTAKES: AnswerKind[] = ['swap', 'echo', 'shuffle', 'drop', 'replace'];

function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function randomDigits(rng: Rng, { minDigits = 3, maxDigits = 5 }: DigitsOptions): number[] {
  if (!(Number.isInteger(minDigits) && minDigits >= 2 && maxDigits >= minDigits && maxDigits <= 20)) {
    throw new RangeError(
      `digits per prompt: need 2 <= minDigits <= maxDigits <= 20, got ${minDigits}..${maxDigits}`,
    );
  }
  const n = minDigits + rng.int(maxDigits - minDigits + 1);
  return Array.from({ length: n }, () => rng.int(10));
}

/** One answer of the given kind to a fresh random prompt's digits. */
function answer(kind: AnswerKind, digits: number[], rng: Rng): string {
  return answers[kind](
    [...digits].sort((a, b) => a - b),
    digits,
    rng,
  );
}

/** Demonstrations: mostly ideal answers, a `noise` share (default 0.3) of near misses, so PPO has room. */
export function generateSftRows(
  count: number,
  options: DigitsOptions & { noise?: number } = {},
): { prompt: string; response: string }[] {
  const rng = createRng(options.seed ?? DEFAULT_SEEDS.sft);
  const noise = options.noise ?? 0.3;
  return Array.from({ length: count }, () => {
    const digits = randomDigits(rng, options);
    const kind = rng.next() < noise ? rng.pick(SFT_MISTAKES) : 'ideal';
    return { prompt: formatPrompt(digits), response: answer(kind, digits, rng) };
  });
}

/** Distinct answers to one prompt, with distinct ground-truth scores, best first. */
function rankedAnswers(digits: number[], k: number, rng: Rng): string[] {
  const prompt = formatPrompt(digits);
  const picked = new Map<string, number>();
  for (let tries = 0; picked.size < k; tries++) {
    if (tries > 10_000) throw new Error(`could not find ${k} answers with distinct scores for ${prompt}`);
    const response = answer(rng.pick(ANSWER_KINDS), digits, rng);
    const score = groundTruthScore(prompt, response);
    if (![...picked.values()].some((s) => Math.abs(s - score) < 1e-9)) picked.set(response, score);
  }
  return [...picked].sort((a, b) => b[1] - a[1]).map(([response]) => response);
}

/** Comparisons: `chosen` has the strictly higher ground-truth score. */
export function generatePreferenceRows(count: number, options: DigitsOptions = {}): PreferenceTextRow[] {
  const rng = createRng(options.seed ?? DEFAULT_SEEDS.preference);
  return Array.from({ length: count }, () => {
    const digits = randomDigits(rng, options);
    const [chosen, rejected] = rankedAnswers(digits, 2, rng);
    return { prompt: formatPrompt(digits), chosen, rejected };
  });
}

/** Rankings of `k` answers (default 4) with distinct ground-truth scores, best → worst. */
export function generateRankedRows(
  count: number,
  options: DigitsOptions & { k?: number } = {},
): RankedTextRow[] {
  const rng = createRng(options.seed ?? DEFAULT_SEEDS.ranked);
  const k = options.k ?? 4;
  return Array.from({ length: count }, () => {
    const digits = randomDigits(rng, options);
    return { prompt: formatPrompt(digits), responses: rankedAnswers(digits, k, rng) };
  });
}

/** Prompts for PPO rollouts. */
export function generatePromptRows(count: number, options: DigitsOptions = {}): PromptTextRow[] {
  const rng = createRng(options.seed ?? DEFAULT_SEEDS.prompt);
  return Array.from({ length: count }, () => ({ prompt: formatPrompt(randomDigits(rng, options)) }));
}

/** One JSON object per line, newline-terminated. */
export function toJsonl(rows: readonly unknown[]): string {
  return rows.map((row) => `${JSON.stringify(row)}\n`).join('');
}
