// @rlhf/eval: the statistics of evaluation — win rates, Bradley–Terry / Elo ratings, position-bias control,
// reward-model calibration and leaderboards.
export {
  type BootstrapOptions,
  type Interval,
  percentileInterval,
  quantileSorted,
} from './bootstrap.js';
export {
  type BradleyTerryFit,
  type BradleyTerryOptions,
  bradleyTerry,
  type Comparison,
  eloExpectedScore,
  eloOfLogStrength,
  type ModelRating,
  type RatingAnchor,
} from './bradley-terry.js';
export {
  bradleyTerryPreference,
  type CalibrationOptions,
  type MarginBucket,
  type RewardCalibration,
  rewardCalibration,
} from './calibration.js';
export {
  type PreferenceScores,
  type RewardModelCalibrationInput,
  rewardModelCalibration,
  scorePreferencePairs,
} from './reward-model-calibration.js';
export {
  createLanguageModelJudge,
  DEFAULT_JUDGE_TEMPLATE,
  type LanguageModelJudge,
  type LanguageModelJudgeOptions,
  renderJudgePrompt,
  twoAnswerPreference,
} from './language-model-judge.js';
export {
  countedSampleCache,
  memorySampleCache,
  type SampleBatchIdentity,
  type SampleCache,
  type SampleCacheCounts,
  sampleBatchKey,
} from './sample-cache.js';
export {
  type CachedJudgeOptions,
  cachedJudge,
  type JudgmentCache,
  type JudgmentCounts,
  judgmentKey,
  memoryJudgmentCache,
} from './judgment-cache.js';
export {
  cohenKappa,
  type Gate,
  type GateVerdict,
  gateVerdict,
  type JudgeAgreement,
  judgeAgreement,
} from './gate.js';
export { comparisonsOf, type Leaderboard, type LeaderboardRow, leaderboard } from './leaderboard.js';
export {
  consistentOutcome,
  type JudgeRequest,
  outcomeOfPreference,
  type PairwiseJudge,
  type PositionBias,
  type ResponsePair,
  type SwappedVerdict,
  type SwappedVerdictOptions,
  type SwappedVerdicts,
  swapAveragedPreference,
  swappedVerdicts,
} from './position-bias.js';
export {
  flipOutcome,
  type Outcome,
  outcomeOfDifference,
  outcomeScore,
  pairedOutcomes,
  type WinRate,
  type WinRateOptions,
  winRate,
  winRateOfCounts,
} from './win-rate.js';
export {
  batchSeed,
  type CompareModelsInput,
  type CompareModelsResult,
  compareModels,
  type EvalJudge,
  type EvalModel,
  type EvalSampling,
  type PairComparison,
  type VerdictRow,
} from './compare.js';
