// @rlhf/reward-model: the reward-model stage (Bradley–Terry over ranked responses).
export {
  type EvaluateRewardModelInput,
  evaluateRewardModel,
  type PairEvaluation,
  type RewardModelInput,
  type RewardNormalisation,
  type RewardRow,
  rewardNormalisation,
  trainRewardModel,
} from './reward-model.js';
