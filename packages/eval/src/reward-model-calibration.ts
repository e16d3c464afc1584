// A reward model's calibration on a held-out preference set: every pair scored as the reward model was trained
// ([bos] + prompt + response + [eos], the stage-kit ranked tokenisation), then rewardCalibration on the scores.
import { ByteTokenizer, createScorer, type Tokenizer } from '@rlhf/model';
import type { Runtime } from '@rlhf/runtime';
import {
  effectiveMaxSeqLen,
  type ModelWeights,
  type RankingRow,
  rankedPairs,
  scoreRankings,
  tokenizeRanking,
} from '@rlhf/stage-kit';
import { type CalibrationOptions, type RewardCalibration, rewardCalibration } from './calibration.js';

export interface RewardModelCalibrationInput extends CalibrationOptions {
  runtime: Runtime;
  /** A reward model (scalar head). */
  model: ModelWeights;
  /** Preference rows (chosen, rejected) or rankings (best → worst: every C(K,2) pair counts). */
  rows: readonly RankingRow[];
  tokenizer?: Tokenizer;
  /** Default: the model's context. */
  maxSeqLen?: number;
}

export interface PreferenceScores {
  /** Per pair: the reward of the preferred response and of the other one. */
  chosen: number[];
  rejected: number[];
  /** Rows left out because the prompt alone fills maxSeqLen. */
  skipped: number;
}

/** Scores every (better, worse) pair of the rows with the reward model. */
export async function scorePreferencePairs(input: RewardModelCalibrationInput): Promise<PreferenceScores> {
  if (!input.model.config.scalarHead)
    throw new RangeError('scorePreferencePairs: the model has no scalar head');
  const tokenizer = input.tokenizer ?? new ByteTokenizer();
  const maxSeqLen = effectiveMaxSeqLen(
    input.maxSeqLen ?? input.model.config.maxPositions,
    input.model.config,
  );
  const examples = input.rows.map((row) => tokenizeRanking(tokenizer, row, maxSeqLen)?.example);
  const kept = examples.filter((e) => e !== undefined);
  const scorer = await createScorer(input.runtime, input.model.config, { outputs: ['scores'] });
  try {
    const scores = await scoreRankings(
      scorer,
      input.model.params,
      kept,
      tokenizer.padId,
      (out, row) => out.scores![row],
    );
    const chosen: number[] = [];
    const rejected: number[] = [];
    for (const s of scores) {
      for (const [better, worse] of rankedPairs(s.length)) {
        chosen.push(s[better]);
        rejected.push(s[worse]);
      }
    }
    return { chosen, rejected, skipped: examples.length - kept.length };
  } finally {
    await scorer.release();
  }
}

/** Held-out pair accuracy with its interval and accuracy by margin bucket of a reward model. */
export async function rewardModelCalibration(
  input: RewardModelCalibrationInput,
): Promise<RewardCalibration & { skipped: number }> {
  const { chosen, rejected, skipped } = await scorePreferencePairs(input);
  return { ...rewardCalibration(chosen, rejected, input), skipped };
}
