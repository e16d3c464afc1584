import { fileURLToPath } from 'node:url';

export {
  ANSWER_KINDS,
  type AnswerKind,
  DEFAULT_COUNTS,
  DEFAULT_SEEDS,
  type DigitsOptions,
  generatePreferenceRows,
  generatePromptRows,
  generateRankedRows,
  generateSftRows,
  toJsonl,
} from './generators.js';
export { createRng, type Rng } from './random.js';
export {
  formatPrompt,
  formatResponse,
  groundTruthScore,
  idealResponse,
  parsePrompt,
  type ScoreParts,
  scoreParts,
} from './task.js';

const data = (name: string) => fileURLToPath(new URL(`./data/${name}`, import.meta.url));

/** Absolute paths of the committed sort-digits datasets (written by generate.ts with the defaults). */
export const sortDigitsFiles = {
  sft: data('sft.jsonl'),
  preference: data('preference.jsonl'),
  ranked: data('ranked.jsonl'),
  prompt: data('prompts.jsonl'),
} as const;
