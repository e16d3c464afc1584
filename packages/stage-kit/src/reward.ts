// A batch reward: what a sampling stage (GRPO, RLOO, REINFORCE++; RAFT and PPO where they take graders) scores
// its responses with. Declarative graders, a reward model and a named programmatic task all produce this shape.
import type { PromptRow } from '@rlhf/contracts';
import { promptText } from './data.js';

/**
 * Scores `responses[i]`, the answer to `rows[i]`: `scores` is the reward each response trains on; `parts` holds
 * each named component's scores (one grader of a `multi`, the reward model, a task), the same length, for
 * metrics (`reward/<name>`) and the samples table.
 */
export type BatchReward = (
  rows: readonly PromptRow[],
  responses: readonly string[],
) => Promise<{ scores: number[]; parts: Record<string, number[]> }>;

/** A programmatic reward of (prompt, response), e.g. a registered named task, as a BatchReward of one part. */
export function taskReward(name: string, score: (prompt: string, response: string) => number): BatchReward {
  return async (rows, responses) => {
    if (rows.length !== responses.length)
      throw new RangeError(`taskReward: ${rows.length} rows for ${responses.length} responses`);
    const scores = responses.map((response, i) => score(promptText(rows[i]), response));
    return { scores, parts: { [name]: scores } };
  };
}
