// The reward sources of the critic-free stages as BatchRewards: a team's reward model (here) and a named
// programmatic task (taskReward, @rlhf/stage-kit); declarative graders produce the same shape.
import { createScorer, type Tokenizer } from '@rlhf/model';
import type { Runtime } from '@rlhf/runtime';
import {
  type BatchReward,
  type BudgetedRowsOptions,
  budgetedScorer,
  type Framing,
  type ModelWeights,
  promptTokens,
} from '@rlhf/stage-kit';

/** The part name a reward model's scores carry in metrics (`reward/reward_model`) and sample tables. */
export const REWARD_MODEL_PART = 'reward_model';

export interface RewardModelRewardOptions {
  tokenizer: Tokenizer;
  /** Prompt tokens kept (their end), BOS included, as the policy saw them. */
  maxPromptLen: number;
  /** Response tokens kept, EOS included: the sampling budget (maxNewTokens). */
  maxResponseLen: number;
  /** The stage's framing: `messages` prompts rendered as the policy saw them (default: the tokenizer's text framing). */
  framing?: Framing;
  /** The stage's signal and log: the rows are scored in budget-sized calls, the signal checked between them. */
  calls?: BudgetedRowsOptions;
}

export interface RewardModelReward {
  reward: BatchReward;
  release(): Promise<void>;
}

/**
 * A reward model with a scalar head as a BatchReward of one part. Each row is tokenized as the reward model was
 * trained, [bos] + prompt and response + [eos]; a response that filled the budget without EOS is cut to it
 * (no EOS), as it was sampled. Holds one scoring session until release().
 */
export async function createRewardModelReward(
  runtime: Runtime,
  model: ModelWeights,
  options: RewardModelRewardOptions,
): Promise<RewardModelReward> {
  if (!model.config.scalarHead) throw new Error('createRewardModelReward: the model has no scalar head');
  const { tokenizer, maxPromptLen, maxResponseLen } = options;
  const scorer = budgetedScorer(
    await createScorer(runtime, model.config, { outputs: ['scores'] }),
    options.calls,
  );
  return {
    async reward(rows, responses) {
      if (rows.length !== responses.length)
        throw new RangeError(`reward model: ${rows.length} rows for ${responses.length} responses`);
      if (rows.length === 0) return { scores: [], parts: { [REWARD_MODEL_PART]: [] } };
      const tokens = responses.map((text) =>
        [...tokenizer.encode(text), tokenizer.eosId].slice(0, maxResponseLen),
      );
      const width = Math.max(...tokens.map((row) => row.length));
      const { scores } = await scorer.score({
        params: model.params,
        prompts: rows.map((row) => promptTokens(tokenizer, row, maxPromptLen, options.framing)),
        padId: tokenizer.padId,
        responses: tokens.map((row) => [
          ...row,
          ...new Array<number>(width - row.length).fill(tokenizer.padId),
        ]),
        responseMask: tokens.map((row) => [
          ...row.map(() => 1),
          ...new Array<number>(width - row.length).fill(0),
        ]),
      });
      return { scores: scores!, parts: { [REWARD_MODEL_PART]: scores! } };
    },
    release: () => scorer.release(),
  };
}
