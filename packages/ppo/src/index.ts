// @rlhf/ppo: PPO with a per-token KL penalty against the frozen SFT reference (InstructGPT §3.5, TRL PPOTrainer).
export { gae, type GaeInput, arrayMaskedMean, arrayMaskedVar, whiten } from './advantages.js';
export {
  buildPpoTrainStep,
  buildRolloutScoringGraph,
  criticValues,
  type ModelRole,
  type PpoModels,
  type PpoTrainStepOptions,
  paramName,
  ROLLOUT_INPUTS,
  TRAIN_METRICS,
  trainedParams,
} from './graphs.js';
export {
  AdaptiveKlController,
  createKlController,
  FixedKlController,
  type KlController,
  type KlControllerState,
} from './kl-controller.js';
export {
  approxKlK3,
  clippedValueLoss,
  entropyBonus,
  type PolicyLoss,
  ppoLoss,
  ppoPolicyLoss,
  type ValueLoss,
} from './losses.js';
export {
  type Floats,
  type KlPenaltyInput,
  type KlPenaltyRewards,
  klPenaltyRewards,
  type Mask,
} from './rewards.js';
export {
  createRolloutEngine,
  type Rollout,
  type RolloutEngine,
  type RolloutOptions,
  type RolloutParams,
  samplerLogprobDiff,
} from './rollout.js';
export { explainedVariance, type PpoTargets, ppoTargets, sequenceEntropy } from './targets.js';
export { trainInputs } from './iteration.js';
export {
  criticFromRewardModel,
  type PpoHyperparameters,
  type PpoResult,
  type TrainPpoOptions,
} from './setup.js';
export {
  CRITIC_PREFIX,
  GROUND_TRUTH_METRIC,
  trainPpo,
} from './train.js';
export { adaptedFromShared, frozenBaseFeeds, frozenBaseInputs, frozenBaseShapes } from './lora-base.js';
