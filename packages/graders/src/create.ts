// A validated grader spec as a batch reward: scores for each (row, response) plus each named grader's scores
// (`parts`) for per-grader metrics. A multi's parts are its children by name, a nested multi's children as
// `<child>/<grandchild>`; a single grader's part is its own name (default: its type).
import {
  graderName,
  type GraderSpec,
  MAX_RESPONSE_CHARS,
  type MultiGraderSpec,
  type PromptRow,
} from '@rlhf/contracts';
import { promptText } from '@rlhf/stage-kit';
import { type LeafDeps, leafScorer } from './leaves.js';
import { ReferenceFieldError } from './references.js';
import { RegexWorkLimitError } from './regex/engine.js';
import { assertGrader } from './validate.js';

/** Scores a batch of responses to prompt rows (the BatchReward of @rlhf/stage-kit). */
export type GraderFunction = (
  rows: readonly PromptRow[],
  responses: readonly string[],
) => Promise<{ scores: number[]; parts: Record<string, number[]> }>;

/** Scores responses with the run's reward model: one finite number per (prompt text, response). */
export type RewardModelScorer = (prompts: string[], responses: string[]) => Promise<number[]>;

export interface GraderDeps {
  /** Needed by reward_model graders. */
  rewardModel?: RewardModelScorer;
  /** Needed by length graders in unit "tokens": the policy tokenizer's token count of a text. */
  countTokens?: (text: string) => number;
}

/** A sample the grader could not score: names the grader (a JSON Pointer into the spec) and the sample. */
export class GraderError extends Error {
  override name = 'GraderError';
  constructor(
    readonly path: string,
    readonly sample: number,
    message: string,
  ) {
    super(`grader ${path || '(root)'}, sample ${sample}: ${message}`);
  }
}

type Node = (
  rows: readonly PromptRow[],
  responses: readonly string[],
) => Promise<{ scores: number[]; parts: Record<string, number[]> }>;

/** Compiles a spec (validated first: ContractError names every problem) into a batch reward. */
export function createGrader(spec: unknown, deps: GraderDeps = {}): GraderFunction {
  const valid = assertGrader(spec, {
    rewardModel: deps.rewardModel !== undefined,
    tokenizer: deps.countTokens !== undefined,
  });
  const root = compileNode(valid, '', deps);
  return async (rows, responses) => {
    if (rows.length !== responses.length)
      throw new RangeError(`grader: ${rows.length} rows for ${responses.length} responses`);
    responses.forEach((response, i) => {
      if (response.length > MAX_RESPONSE_CHARS)
        throw new GraderError(
          '',
          i,
          `the response has ${response.length} characters, more than ${MAX_RESPONSE_CHARS}`,
        );
    });
    const { scores, parts } = await root(rows, responses);
    return { scores, parts: valid.type === 'multi' ? parts : { [graderName(valid)]: scores } };
  };
}

function compileNode(spec: GraderSpec, path: string, deps: GraderDeps): Node {
  if (spec.type === 'multi') return compileMulti(spec, path, deps);
  if (spec.type === 'reward_model') return rewardModelNode(path, deps);
  const score = leafScorer(spec, deps as LeafDeps);
  return async (rows, responses) => ({
    scores: responses.map((response, i) => {
      try {
        return score(rows[i], response);
      } catch (error) {
        if (error instanceof ReferenceFieldError || error instanceof RegexWorkLimitError)
          throw new GraderError(path, i, error.message);
        throw error;
      }
    }),
    parts: {},
  });
}

function rewardModelNode(path: string, deps: GraderDeps): Node {
  const scorer = deps.rewardModel as RewardModelScorer;
  return async (rows, responses) => {
    const scores = await scorer(rows.map(promptText), [...responses]);
    if (scores.length !== responses.length)
      throw new GraderError(
        path,
        0,
        `the reward model gave ${scores.length} scores for ${responses.length} responses`,
      );
    const bad = scores.findIndex((s) => !Number.isFinite(s));
    if (bad >= 0) throw new GraderError(path, bad, `the reward model's score is ${scores[bad]}`);
    return { scores, parts: {} };
  };
}

/** weighted_sum: Σ wᵢ·sᵢ (weights default 1, not normalised); min: minᵢ sᵢ; product: Πᵢ sᵢ. */
export function combineScores(
  combine: MultiGraderSpec['combine'],
  scores: readonly number[],
  weights: readonly number[],
): number {
  switch (combine) {
    case 'weighted_sum':
      return scores.reduce((sum, s, i) => sum + weights[i] * s, 0);
    case 'min':
      return Math.min(...scores);
    case 'product':
      return scores.reduce((product, s) => product * s, 1);
  }
}

function compileMulti(spec: MultiGraderSpec, path: string, deps: GraderDeps): Node {
  const children = spec.graders.map((child, i) => ({
    name: graderName(child),
    weight: spec.weights?.[graderName(child)] ?? 1,
    node: compileNode(child, `${path}/graders/${i}`, deps),
  }));
  return async (rows, responses) => {
    const results = await Promise.all(children.map((child) => child.node(rows, responses)));
    const parts: Record<string, number[]> = {};
    results.forEach((result, k) => {
      parts[children[k].name] = result.scores;
      for (const [inner, scores] of Object.entries(result.parts))
        parts[`${children[k].name}/${inner}`] = scores;
    });
    const weights = children.map((child) => child.weight);
    const scores = responses.map((_, i) =>
      combineScores(
        spec.combine,
        results.map((r) => r.scores[i]),
        weights,
      ),
    );
    return { scores, parts };
  };
}
