// Scoring sized to the call budget, for the sampling stages: one score() of B rows (prompt + response, one
// forward) runs as budget-sized calls of consecutive rows (rows.ts), the stage's abort signal checked between.
import { longest, type Scorer, type ScoreResult } from '@rlhf/model';
import { type BudgetedRowsOptions, joinRows, rowSplitter } from './rows.js';

/** `scorer` with each score() split into budget-sized calls of rows; the rows' results are the unsplit call's. */
export function budgetedScorer(scorer: Scorer, options: BudgetedRowsOptions = {}): Scorer {
  const split = rowSplitter('score', options);
  return {
    async score(request) {
      const B = request.responses.length;
      const parts = await split(
        B,
        longest(request.prompts) + (request.responses[0]?.length ?? 0),
        (from, rows) =>
          scorer.score({
            ...request,
            prompts: request.prompts.slice(from, from + rows),
            responses: request.responses.slice(from, from + rows),
            responseMask: request.responseMask.slice(from, from + rows),
          }),
      );
      return parts.length === 1 ? parts[0] : joined(parts);
    },
    release: () => scorer.release(),
  };
}

function joined(parts: readonly ScoreResult[]): ScoreResult {
  const perToken = (of: (part: ScoreResult) => number[][] | undefined) =>
    of(parts[0]) === undefined ? undefined : joinRows(parts.map((p) => of(p)!));
  const scores = parts[0].scores === undefined ? undefined : joinRows(parts.map((p) => p.scores!));
  const result: ScoreResult = {};
  const logprobs = perToken((p) => p.logprobs);
  const entropy = perToken((p) => p.entropy);
  const values = perToken((p) => p.values);
  if (logprobs) result.logprobs = logprobs;
  if (entropy) result.entropy = entropy;
  if (values) result.values = values;
  if (scores) result.scores = scores;
  return result;
}
