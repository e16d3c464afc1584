// @rlhf/dpo: direct preference optimisation and its relatives on preference pairs and ranked lists.
export { type DpoInput, dpoObjective, trainDpo } from './dpo.js';
export {
  type PairSide,
  pairSide,
  type RankingBatch,
  type RankingInput,
  type RankingObjective,
  sequenceLogps,
  trainOnRankings,
} from './rankings.js';
export {
  dpoLogits,
  hingeLoss,
  ipoLoss,
  plackettLuceLoss,
  rrhfRankLoss,
  sigmoidLoss,
  simpoLoss,
} from './losses.js';
export { type ProInput, proObjective, trainPro } from './pro.js';
