// DPO and its relatives (Rafailov et al. 2023; IPO, SLiC hinge, conservative DPO, SimPO, RPO) as an objective on
// the shared ranking trainer (rankings.ts): the policy learns from ranked responses directly, regularised toward
// a frozen reference (SimPO: reference-free), with no reward model.
import { type DpoConfig, type DpoConfigInput, resolveDpoConfig } from '@rlhf/contracts';
import { div, mul, sub, type Tensor } from '@rlhf/graph';
import type { StageResult } from '@rlhf/stage-kit';
import { dpoLogits, hingeLoss, ipoLoss, sigmoidLoss, simpoLoss } from './losses.js';
import { pairSide, type RankingInput, type RankingObjective, trainOnRankings } from './rankings.js';

export type DpoInput = RankingInput<DpoConfig | DpoConfigInput>;

/** The DPO family's loss and implicit reward: β(log π − log π_ref) of a response; SimPO's is β · mean log π. */
export function dpoObjective(config: DpoConfig): RankingObjective {
  const simpo = config.lossType === 'simpo';
  return {
    stage: 'dpo',
    config,
    usesReference: !simpo,
    lora: config.lora,
    sftWeight: config.rpoAlpha,
    reward: (sum: Tensor, tokens: Tensor, ref: Tensor) =>
      simpo ? mul(div(sum, tokens), config.beta) : mul(sub(sum, ref), config.beta),
    hostReward: (sum, tokens, ref) => (simpo ? (config.beta * sum) / tokens : config.beta * (sum - ref)),
    loss(batch) {
      const chosen = pairSide(batch, batch.better);
      const rejected = pairSide(batch, batch.worse);
      const z = () => dpoLogits(chosen.sum, rejected.sum, chosen.ref, rejected.ref);
      switch (config.lossType) {
        case 'sigmoid':
          return batch.pairMean(sigmoidLoss(z(), config.beta, config.labelSmoothing));
        case 'hinge':
          return batch.pairMean(hingeLoss(z(), config.beta));
        case 'ipo':
          return batch.pairMean(
            ipoLoss(dpoLogits(chosen.mean, rejected.mean, chosen.refMean, rejected.refMean), config.beta),
          );
        case 'simpo':
          return batch.pairMean(simpoLoss(chosen.mean, rejected.mean, config.beta, config.simpoGamma));
      }
    },
  };
}

/** Trains the policy with a DPO-family loss; resumes from hooks.checkpoints (a checkpoint of this stage). */
export async function trainDpo(input: DpoInput): Promise<StageResult> {
  return trainOnRankings(input, dpoObjective(resolveDpoConfig(input.config)));
}
