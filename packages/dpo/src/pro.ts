// PRO (Song et al. 2023) and RRHF (Yuan et al. 2023) as objectives on the shared ranking trainer: reference-free,
// a response scores scoreScale × its mean log-prob per token, plus an SFT term on each ranking's best response.
// PRO reads the whole ranking at once (Plackett–Luce); RRHF hinges every (better, worse) pair of it.
import { type ProConfig, type ProConfigInput, resolveProConfig } from '@rlhf/contracts';
import { div, mul, reduceMean, reshape, type Tensor } from '@rlhf/graph';
import type { StageResult } from '@rlhf/stage-kit';
import { plackettLuceLoss, rrhfRankLoss } from './losses.js';
import { pairSide, type RankingInput, type RankingObjective, trainOnRankings } from './rankings.js';

export type ProInput = RankingInput<ProConfig | ProConfigInput>;

export function proObjective(config: ProConfig): RankingObjective {
  const score = (sum: Tensor, tokens: Tensor) => mul(div(sum, tokens), config.scoreScale);
  return {
    stage: 'pro',
    config,
    usesReference: false,
    lora: config.lora,
    sftWeight: config.sftWeight,
    reward: (sum, tokens) => score(sum, tokens),
    hostReward: (sum, tokens) => (config.scoreScale * sum) / tokens,
    loss(batch) {
      if (config.objective === 'rrhf') {
        const better = pairSide(batch, batch.better);
        const worse = pairSide(batch, batch.worse);
        return batch.pairMean(
          rrhfRankLoss(mul(better.mean, config.scoreScale), mul(worse.mean, config.scoreScale)),
        );
      }
      const scores = reshape(score(batch.sums, batch.tokens), [batch.B, batch.K]);
      return reduceMean(plackettLuceLoss(scores, batch.slots, batch.K));
    },
    effective: { objective: config.objective },
  };
}

/** Trains the policy with PRO or RRHF on ranked lists; resumes from hooks.checkpoints. */
export async function trainPro(input: ProInput): Promise<StageResult> {
  return trainOnRankings(input, proObjective(resolveProConfig(input.config)));
}
