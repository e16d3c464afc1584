export { gae, type GaeInput, maskedMean, maskedVar, whiten } from './advantages.js';
export {
  AdaptiveKlController,
  createKlController,
  FixedKlController,
  type KlController,
  type KlControllerState,
} from './kl-controller.js';
export {
  type Floats,
  type KlPenaltyInput,
  type KlPenaltyRewards,
  klPenaltyRewards,
  type Mask,
} from './rewards.js';
