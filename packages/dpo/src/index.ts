// @rlhf/dpo: direct preference optimisation and its relatives on preference pairs and ranked lists.
export { type DpoInput, sequenceLogps, trainDpo } from './dpo.js';
export { dpoLogits, hingeLoss, ipoLoss, sigmoidLoss, simpoLoss } from './losses.js';
