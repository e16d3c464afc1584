// Metric names, as TRL and its users spell them. Stages report `{ name: value }` per step.

/** Per PPO iteration (docs/DESIGN.md, RLHF conventions). */
export const PpoMetrics = {
  /** mean over responses of Σ_t (log π − log π_ref) */
  kl: 'objective/kl',
  entropy: 'objective/entropy',
  /** mean over responses of −β Σ_t (log π − log π_ref) */
  nonScoreReward: 'objective/non_score_reward',
  /** scores + non-score reward */
  rlhfReward: 'objective/rlhf_reward',
  scores: 'objective/scores',
  /** programmatic ground-truth score of the responses, where the task has one (reward hacking: scores ↑, this ↓) */
  groundTruth: 'objective/ground_truth',
  approxKl: 'policy/approxkl',
  clipFrac: 'policy/clipfrac',
  policyEntropy: 'policy/entropy',
  policyLoss: 'loss/policy_avg',
  valueLoss: 'loss/value_avg',
  valLoss: 'val/loss',
  valClipFrac: 'val/clipfrac',
  explainedVar: 'val/explained_var',
  responseLenMean: 'rollout/response_len_mean',
  eosRate: 'rollout/eos_rate',
  /** max |sampler log-prob − training-graph log-prob| over response tokens: ~0 when both graphs agree */
  samplerLogprobDiff: 'rollout/sampler_logprob_diff',
  klCoef: 'kl_ctl/value',
  timeGenerate: 'timing/generate',
  timeScore: 'timing/score',
  timeTrain: 'timing/train',
  timeStep: 'timing/step',
  tokensPerSec: 'perf/tokens_per_sec',
} as const;

/** Per SFT log step; `eval/loss` is the held-out loss. */
export const SftMetrics = {
  loss: 'train/loss',
  lr: 'train/lr',
  gradNorm: 'train/grad_norm',
  evalLoss: 'eval/loss',
  timeStep: 'timing/step',
  tokensPerSec: 'perf/tokens_per_sec',
} as const;

/** Per reward-model log step; accuracy = share of pairs with r_chosen > r_rejected. */
export const RewardModelMetrics = {
  loss: 'train/loss',
  accuracy: 'train/accuracy',
  lr: 'train/lr',
  gradNorm: 'train/grad_norm',
  evalLoss: 'eval/loss',
  evalAccuracy: 'eval/accuracy',
  /** mean r_chosen − r_rejected on held-out pairs */
  evalMargin: 'eval/margin',
  timeStep: 'timing/step',
  tokensPerSec: 'perf/tokens_per_sec',
} as const;

/**
 * Per DPO log step, as TRL's DPOTrainer logs them: rewards are the implicit ones, β(log π − log π_ref) of a
 * response (SimPO: β · mean log π per token); accuracies = share of pairs whose chosen reward is higher.
 * Held-out versions carry an `eval/` prefix.
 */
export const DpoMetrics = {
  loss: 'train/loss',
  rewardsChosen: 'rewards/chosen',
  rewardsRejected: 'rewards/rejected',
  rewardsAccuracies: 'rewards/accuracies',
  rewardsMargins: 'rewards/margins',
  logpsChosen: 'logps/chosen',
  logpsRejected: 'logps/rejected',
  /** the loss on held-out pairs (sigmoid, hinge and SimPO losses; IPO's reads length-normalised log-probs) */
  evalLoss: 'eval/loss',
  evalRewardsAccuracies: 'eval/rewards/accuracies',
  evalRewardsMargins: 'eval/rewards/margins',
  evalRewardsChosen: 'eval/rewards/chosen',
  evalRewardsRejected: 'eval/rewards/rejected',
  /** mean over held-out chosen responses of Σ_t (log π − log π_ref): how far the policy moved from the reference */
  evalKl: 'eval/kl',
} as const;

/** Per RAFT iteration: reward-model scores of all samples vs the kept ones, and how far the policy moved. */
export const RaftMetrics = {
  rewardAll: 'reward/all_mean',
  rewardKept: 'reward/kept_mean',
  rewardKeptMax: 'reward/kept_max',
  groundTruth: 'objective/ground_truth',
  groundTruthKept: 'objective/ground_truth_kept',
  /** mean over kept responses of Σ_t (log π − log π_start) */
  kl: 'objective/kl',
  loss: 'train/loss',
  responseLenMean: 'rollout/response_len_mean',
  eosRate: 'rollout/eos_rate',
} as const;

/** Per GRPO / RLOO / REINFORCE++ iteration (TRL GRPOTrainer names where they exist). */
export const GrpoMetrics = {
  /** mean reward of the iteration's responses */
  reward: 'reward',
  /** mean over groups of the population std of their G rewards */
  rewardStd: 'reward_std',
  /** share of groups whose G rewards are all equal (no learning signal) */
  zeroStdGroups: 'frac_reward_zero_std',
  /** share of groups dynamic sampling left out of the update (0 when it is off) */
  droppedGroups: 'dynamic_sampling/dropped_frac',
  /** 1 when the iteration updated the policy; 0 when dynamic sampling left no group */
  updated: 'train/updated',
  /** k3 KL(π ‖ π_ref) per token, mean over the update's steps (over the rollout when there was no update) */
  kl: 'kl',
  /** share of tokens with A < 0 whose ratio fell below 1 − ε (clipped) */
  clipLow: 'clip_ratio/low_mean',
  /** share of tokens with A > 0 whose ratio rose above 1 + ε_high (clipped) */
  clipHigh: 'clip_ratio/high_mean',
  /** exact entropy of the sampling distribution (at the temperature) per response token, mean */
  entropy: 'entropy',
  loss: 'train/loss',
  responseLenMean: 'completions/mean_length',
  eosRate: 'rollout/eos_rate',
  /** response tokens sampled per second of generation */
  samplingTokensPerSec: 'perf/sampling_tokens_per_sec',
} as const;

/** The metric of one named part of a batch reward (a grader, the reward model, a task): its mean score. */
export const rewardPartMetric = (name: string): string => `reward/${name}`;

type Values<T> = T[keyof T];
export type PpoMetricName = Values<typeof PpoMetrics>;
export type SftMetricName = Values<typeof SftMetrics>;
export type RewardModelMetricName = Values<typeof RewardModelMetrics>;
export type MetricName = PpoMetricName | SftMetricName | RewardModelMetricName;
