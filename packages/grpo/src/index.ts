// @rlhf/grpo: critic-free online RL (GRPO, RLOO) with rewards from a reward model or a programmatic task.
export { grpoAdvantages, rlooAdvantages, zeroSpreadGroups } from './advantages.js';
export { type GrpoInput, trainGrpo } from './grpo.js';
