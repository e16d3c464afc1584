// Comparing models end to end: each model answers the same prompts with the same seeded sampling, a judge
// compares the answers prompt by prompt, and the verdicts become win rates (and leaderboard comparisons).
import { createHash } from 'node:crypto';
import { ByteTokenizer, createGenerator, createScorer, type Tokenizer } from '@rlhf/model';
import type { Runtime } from '@rlhf/runtime';
import {
  budgetedGenerator,
  type ModelWeights,
  promptTokens,
  type SampledGroups,
  sampleGroups,
} from '@rlhf/stage-kit';
import type { BootstrapOptions } from './bootstrap.js';
import type { Comparison } from './bradley-terry.js';
import { type SampleCache, sampleBatchKey } from './sample-cache.js';
import { comparisonsOf } from './leaderboard.js';
import { type PairwiseJudge, type PositionBias, swappedVerdicts } from './position-bias.js';
import { type Outcome, pairedOutcomes, type WinRate, winRate } from './win-rate.js';

/** A model under evaluation; `seeds` overrides the shared seeds (e.g. a model against itself). */
export interface EvalModel {
  name: string;
  model: ModelWeights;
  seeds?: readonly number[];
  /** The weights' content address (e.g. a modelKey): required with a sample cache. */
  key?: string;
}

/** The sampling every model uses, as a stage records it. */
export interface EvalSampling {
  maxNewTokens: number;
  /** Default 1; 0 = greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
}

/**
 * How responses are compared: per-response scores (a reward model with a scalar head on the generated tokens, or
 * a programmatic score such as a task's ground truth) with a tie margin, or a pairwise judge in both orders.
 */
export type EvalJudge =
  | { kind: 'reward_model'; model: ModelWeights; tieMargin?: number }
  | { kind: 'score'; score: (prompt: string, response: string) => number; tieMargin?: number }
  | {
      /** Scores a batch: `promptIndices[k]` is the prompt `responses[k]` answers (a grader reads its row). */
      kind: 'batch_score';
      score: (promptIndices: readonly number[], responses: readonly string[]) => Promise<readonly number[]>;
      tieMargin?: number;
    }
  | { kind: 'pairwise'; judge: PairwiseJudge; combine?: 'consistent' | 'averaged'; tieMargin?: number };

export interface CompareModelsInput {
  runtime: Runtime;
  models: readonly EvalModel[];
  /** Prompt texts (a chat row rendered by its template first). */
  prompts: readonly string[];
  /** One generation per prompt and seed; every seed is used by every model (unless it has its own). */
  seeds: readonly number[];
  sampling: EvalSampling;
  judge: EvalJudge;
  tokenizer?: Tokenizer;
  bootstrap?: BootstrapOptions;
  /** Batches already generated (same model key, prompts, seed and sampling) are read from here, not redone. */
  cache?: SampleCache;
  /**
   * Prompts per generation batch (default: all in one). Each batch of a seed draws with its own seed derived
   * from (seed, batch index), so a batch is a cache entry an interrupted evaluation need not redo.
   */
  generationBatch?: number;
  /** A stage's abort signal: generations run as budget-sized calls of rows, checked between them (StepInterrupted). */
  signal?: AbortSignal;
}

/** One prompt and seed: both responses, their scores (score judges) and A's outcome. */
export interface VerdictRow {
  prompt: string;
  promptIndex: number;
  seedIndex: number;
  responseA: string;
  responseB: string;
  scoreA?: number;
  scoreB?: number;
  /** P(A better) from the pairwise judge in each order (pairwise judges). */
  pAFirst?: number;
  pBFirst?: number;
  outcome: Outcome;
}

export interface PairComparison {
  a: string;
  b: string;
  rows: VerdictRow[];
  /** Win rate of a over b; the bootstrap resamples prompts (all seeds of a prompt together). */
  winRate: WinRate;
  positionBias?: PositionBias;
}

export interface CompareModelsResult {
  /** Every pair of models i < j, in the order given. */
  pairs: PairComparison[];
  /** Mean judge score per model (score judges only). */
  meanScores?: Record<string, number>;
  /** The verdicts as comparisons, for bradleyTerry / leaderboard. */
  comparisons: Comparison[];
}

/** One model's samples for one seed: the decoded texts and the batch as a scorer takes it. */
interface SeedSamples {
  texts: string[];
  scored: SampledGroups['scored'];
}

/** Samples of one model, one entry per seed, every prompt once (sampleGroups with n = 1). */
async function generateResponses(
  input: CompareModelsInput,
  entry: EvalModel,
  seeds: readonly number[],
  tokenizer: Tokenizer,
): Promise<SeedSamples[]> {
  const { config, params } = entry.model;
  const { maxNewTokens } = input.sampling;
  const maxPromptLen = config.maxPositions - maxNewTokens;
  if (maxPromptLen < 1)
    throw new RangeError(`${entry.name}: maxNewTokens ${maxNewTokens} leaves no room for a prompt`);
  const prompts = input.prompts.map((text) => promptTokens(tokenizer, text, maxPromptLen));
  const sampling = {
    maxNewTokens,
    temperature: input.sampling.temperature ?? 1,
    topK: input.sampling.topK ?? 0,
    topP: input.sampling.topP ?? 1,
  };
  const { cache } = input;
  const size = input.generationBatch ?? prompts.length;
  const batches: { prompts: number[][]; index: number }[] = [];
  for (let start = 0; start < prompts.length; start += size)
    batches.push({ prompts: prompts.slice(start, start + size), index: batches.length });
  const seedOf = (seed: number, batch: number) =>
    input.generationBatch === undefined ? seed : batchSeed(seed, batch);
  const cells = seeds.flatMap((seed) =>
    batches.map((batch) => {
      const cellSeed = seedOf(seed, batch.index);
      const key =
        cache === undefined
          ? ''
          : sampleBatchKey({ model: entry.key!, prompts: batch.prompts, seed: cellSeed, ...sampling });
      return { seed: cellSeed, batch, key, tokens: undefined as readonly (readonly number[])[] | undefined };
    }),
  );
  for (const cell of cells) cell.tokens = cache === undefined ? undefined : await cache.get(cell.key);
  if (cells.some((c) => c.tokens === undefined)) {
    const generator = budgetedGenerator(await createGenerator(input.runtime, config), {
      signal: input.signal,
    });
    try {
      for (const cell of cells) {
        if (cell.tokens !== undefined) continue;
        const { tokens } = await sampleGroups(generator, {
          params,
          prompts: cell.batch.prompts,
          n: 1,
          ...sampling,
          seed: cell.seed,
          tokenizer,
        });
        await cache?.set(cell.key, tokens);
        cell.tokens = tokens;
      }
    } finally {
      await generator.release();
    }
  }
  return seeds.map((_, k) =>
    samplesOf(
      prompts,
      cells.slice(k * batches.length, (k + 1) * batches.length).flatMap((c) => c.tokens!),
      tokenizer,
    ),
  );
}

/** The seed of batch `batch` of a seed: a hash of both, so batches draw independent streams. */
export function batchSeed(seed: number, batch: number): number {
  const digest = createHash('sha256').update(`${seed}:${batch}`).digest();
  return digest.readUInt32BE(0) & 0x7fffffff;
}

/** Texts and the scoring batch (right-padded responses and their mask) of one batch's sampled tokens. */
function samplesOf(
  prompts: readonly (readonly number[])[],
  tokens: readonly (readonly number[])[],
  tokenizer: Tokenizer,
): SeedSamples {
  let width = 0;
  for (const row of tokens) width = Math.max(width, row.length);
  const fill = (n: number, value: number) => new Array<number>(n).fill(value);
  return {
    texts: tokens.map((row) => tokenizer.decode([...row], { skipSpecialTokens: true })),
    scored: {
      prompts: prompts.map((p) => [...p]),
      padId: tokenizer.padId,
      responses: tokens.map((row) => [...row, ...fill(width - row.length, tokenizer.padId)]),
      responseMask: tokens.map((row) => [...fill(row.length, 1), ...fill(width - row.length, 0)]),
    },
  };
}

/** Per-response judge scores of one model, [seed][prompt] flattened seed-major; null for a pairwise judge. */
async function judgeScores(
  input: CompareModelsInput,
  samples: readonly SeedSamples[][],
): Promise<number[][] | null> {
  const { judge } = input;
  if (judge.kind === 'pairwise') return null;
  if (judge.kind === 'score') {
    return samples.map((bySeed) =>
      bySeed.flatMap((s) => s.texts.map((text, p) => judge.score(input.prompts[p], text))),
    );
  }
  if (judge.kind === 'batch_score') {
    const out: number[][] = [];
    for (const bySeed of samples) {
      const texts = bySeed.flatMap((s) => s.texts);
      const scores = await judge.score(
        texts.map((_, k) => k % input.prompts.length),
        texts,
      );
      if (scores.length !== texts.length)
        throw new RangeError(`compareModels: the judge gave ${scores.length} scores for ${texts.length}`);
      out.push([...scores]);
    }
    return out;
  }
  const rm = judge.model;
  if (!rm.config.scalarHead) throw new RangeError('compareModels: the reward_model judge has no scalar head');
  // The reward model scores the tokens each policy generated, prompt as the policy saw it, EOS where it ended.
  const scorer = await createScorer(input.runtime, rm.config, { outputs: ['scores'] });
  try {
    const out: number[][] = [];
    for (const bySeed of samples) {
      const scores: number[] = [];
      for (const { scored } of bySeed) {
        const longest = Math.max(...scored.prompts.map((p) => p.length)) + (scored.responses[0]?.length ?? 0);
        if (longest > rm.config.maxPositions) {
          throw new RangeError(
            `compareModels: ${longest} tokens exceed the reward model's ${rm.config.maxPositions}`,
          );
        }
        const result = await scorer.score({ params: rm.params, ...scored });
        scores.push(...result.scores!);
      }
      out.push(scores);
    }
    return out;
  } finally {
    await scorer.release();
  }
}

function validate(input: CompareModelsInput): void {
  if (input.models.length < 2) throw new RangeError('compareModels needs at least two models');
  const names = new Set(input.models.map((m) => m.name));
  if (names.size !== input.models.length) throw new RangeError('compareModels: model names must be distinct');
  if (input.prompts.length === 0) throw new RangeError('compareModels: prompts is empty');
  if (input.seeds.length === 0) throw new RangeError('compareModels: seeds is empty');
  const size = input.generationBatch;
  if (size !== undefined && !(Number.isInteger(size) && size >= 1))
    throw new RangeError(`compareModels: generationBatch must be a positive integer, got ${size}`);
  for (const m of input.models) {
    if (input.cache !== undefined && !m.key)
      throw new RangeError(`compareModels: ${m.name} needs a key to use the cache`);
    if ((m.seeds ?? input.seeds).length !== input.seeds.length) {
      throw new RangeError(
        `compareModels: ${m.name} has ${m.seeds?.length} seeds, the others ${input.seeds.length}`,
      );
    }
  }
}

/**
 * Generates from every model with the same seeded sampling, judges every pair of models on every prompt and
 * seed, and returns the per-prompt verdicts with win rates (bootstrap over prompts).
 */
export async function compareModels(input: CompareModelsInput): Promise<CompareModelsResult> {
  validate(input);
  const tokenizer = input.tokenizer ?? new ByteTokenizer();
  const samples: SeedSamples[][] = [];
  for (const entry of input.models) {
    samples.push(await generateResponses(input, entry, entry.seeds ?? input.seeds, tokenizer));
  }
  const P = input.prompts.length;
  const S = input.seeds.length;
  const cells = Array.from({ length: S * P }, (_, k) => ({
    seedIndex: Math.floor(k / P),
    promptIndex: k % P,
  }));
  const scores = await judgeScores(input, samples);

  const { judge } = input;
  const pairs: PairComparison[] = [];
  const comparisons: Comparison[] = [];
  for (let i = 0; i < input.models.length; i++) {
    for (let j = i + 1; j < input.models.length; j++) {
      const a = input.models[i].name;
      const b = input.models[j].name;
      const rows: VerdictRow[] = cells.map((c) => ({
        prompt: input.prompts[c.promptIndex],
        promptIndex: c.promptIndex,
        seedIndex: c.seedIndex,
        responseA: samples[i][c.seedIndex].texts[c.promptIndex],
        responseB: samples[j][c.seedIndex].texts[c.promptIndex],
        outcome: 'tie',
      }));
      let positionBias: PositionBias | undefined;
      if (judge.kind === 'pairwise') {
        const swapped = await swappedVerdicts(
          judge.judge,
          rows.map((r) => ({ prompt: r.prompt, a: r.responseA, b: r.responseB })),
          { tieMargin: judge.tieMargin },
        );
        const outcomes = swapped.outcomes[judge.combine ?? 'averaged'];
        rows.forEach((row, k) => {
          row.pAFirst = swapped.rows[k].pAFirst;
          row.pBFirst = swapped.rows[k].pBFirst;
          row.outcome = outcomes[k];
        });
        positionBias = swapped.positionBias;
      } else if (scores !== null) {
        const outcomes = pairedOutcomes(scores[i], scores[j], judge.tieMargin ?? 0);
        rows.forEach((row, k) => {
          row.scoreA = scores[i][k];
          row.scoreB = scores[j][k];
          row.outcome = outcomes[k];
        });
      }
      const outcomes = rows.map((r) => r.outcome);
      pairs.push({
        a,
        b,
        rows,
        winRate: winRate(outcomes, { ...input.bootstrap, groups: rows.map((r) => r.promptIndex) }),
        positionBias,
      });
      comparisons.push(...comparisonsOf(a, b, outcomes));
    }
  }
  const meanScores =
    scores === null
      ? undefined
      : Object.fromEntries(
          input.models.map((m, k) => [m.name, scores[k].reduce((s, x) => s + x, 0) / cells.length]),
        );
  return { pairs, meanScores, comparisons };
}
