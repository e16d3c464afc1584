import { fileURLToPath } from 'node:url';
import { groundTruthScore } from './task.js';

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

/** The name PPO configs use for this task's programmatic reward (`groundTruth: 'sort-digits'`). */
export const SORT_DIGITS_TASK = 'sort-digits';
/** For a worker's ground-truth registry (`startWorker({ tasks })`, `--tasks`). */
export const tasks = { [SORT_DIGITS_TASK]: groundTruthScore } as const;
