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
    // The losses above in terms of the rewards' margin m = β z (SimPO: β Δmean); IPO's needs the means.
    ...(config.lossType === 'ipo'
      ? {}
      : { hostPairLoss: (chosen: number, rejected: number) => pairLoss(config, chosen - rejected) }),
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

const logSigmoid = (x: number) => (x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x)));

/** A pair's loss from its reward margin m (sigmoid with label smoothing, hinge, SimPO), on the host. */
export function pairLoss(config: DpoConfig, m: number): number {
  if (config.lossType === 'hinge') return Math.max(0, 1 - m);
  if (config.lossType === 'simpo') return -logSigmoid(m - config.simpoGamma);
  const e = config.labelSmoothing;
  return -(1 - e) * logSigmoid(m) - e * logSigmoid(-m);
}
