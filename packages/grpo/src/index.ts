// @rlhf/grpo: critic-free online RL (GRPO, RLOO, REINFORCE++) with rewards from one BatchReward: a reward model,
// a programmatic task or declared graders.
export {
  flatGroups,
  grpoAdvantages,
  meanGroupStd,
  perTokenAdvantages,
  rlooAdvantages,
  zeroSpreadGroups,
} from './advantages.js';
export { type GrpoInput, trainGrpo } from './grpo.js';
export {
  aggregateTokenLoss,
  clippedSurrogateTokens,
  k3KlTokens,
  type LossAggregation,
  type SurrogateTokens,
  withKlTokens,
} from './losses.js';
export { batchNormalise, type ReinforcePpInput, reinforcePpAdvantages, rewardToGo } from './reinforce-pp.js';
export {
  createRewardModelReward,
  REWARD_MODEL_PART,
  type RewardModelReward,
  type RewardModelRewardOptions,
} from './rewards.js';
export { type RolloutInput, type RolloutTensors, rolloutTensors } from './rollout.js';
export { grpoTrainStep } from './train-step.js';
