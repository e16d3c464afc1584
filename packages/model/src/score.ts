// Scoring prompt + response batches: per-token log-probs and entropy (policy / reference), per-token values
// (critic) and the sequence score at the last real token (reward model). The functions work inside any graph
// (PPO's loss graph calls the same ones, so the ratio's old log-probs match); buildScoringGraph wraps them.
//
// Layout (what the generator returns): prompt ids/mask [B, P] left-padded, response ids/mask [B, N]
// right-padded (mask 1 up to and including EOS). The sequence is their concatenation, T = P + N; the logits at
// column t predict token t + 1, so the response tokens are predicted by columns P - 1 .. T - 2.
import {
  add,
  cast,
  clip,
  concat,
  type DType,
  dimOf,
  div,
  exp,
  gatherElements,
  pickLogProbs,
  Graph,
  logSoftmax,
  mul,
  neg,
  range,
  reduceMax,
  reduceSum,
  slice,
  squeeze,
  sub,
  type Tensor,
  unsqueeze,
  tokenLogProbs,
} from '@rlhf/graph';
import { type HostTensor, int64, type Runtime, type Session, hostTensor } from '@rlhf/runtime';
import { type GptConfig, validateConfig } from './config.js';
import { type HostParams, leftPad, type ModelDtype, paramFeeds } from './feeds.js';
import { type GptParams, gptHidden, gptParamInputs, lmHead, scalarHead } from './gpt.js';

/** A prompt + response batch as graph tensors (int64 ids and 0/1 masks). */
export interface ResponseBatch {
  promptIds: Tensor;
  promptMask: Tensor;
  responseIds: Tensor;
  responseMask: Tensor;
}

/** The full sequence: prompt then response, ids and attention mask [B, P + N]. */
export function sequenceOf(batch: ResponseBatch): { ids: Tensor; mask: Tensor } {
  return {
    ids: concat([batch.promptIds, batch.responseIds], 1),
    mask: concat([cast(batch.promptMask, 'int64'), cast(batch.responseMask, 'int64')], 1),
  };
}

/** Divides logits by the sampling temperature (a number 1 or omitted leaves them as they are). */
export function withTemperature(logits: Tensor, temperature?: number | Tensor): Tensor {
  return temperature === undefined || temperature === 1 ? logits : div(logits, temperature);
}

/** log softmax(logits / temperature) over the vocabulary (the last axis). */
export function logProbs(logits: Tensor, temperature?: number | Tensor): Tensor {
  return logSoftmax(withTemperature(logits, temperature), -1);
}

/** Entropy -Σ p log p from log-probs [..., V] -> [...]. */
export function entropyOf(logp: Tensor): Tensor {
  return neg(reduceSum(mul(exp(logp), logp), -1));
}

/** log π(token) under softmax(logits / temperature), for logits [..., V] and int64 tokens [...]. */
export function temperedLogprobs(logits: Tensor, tokens: Tensor, temperature?: number | Tensor): Tensor {
  return tokenLogProbs(withTemperature(logits, temperature), tokens);
}

/** Entropy of softmax(logits / temperature) over the last axis: [..., V] -> [...]. */
export function tokenEntropy(logits: Tensor, temperature?: number | Tensor): Tensor {
  return entropyOf(logProbs(logits, temperature));
}

/** The columns of a [B, T, ...] tensor that predict the last n tokens: T - n - 1 .. T - 2. */
export function responseColumns(x: Tensor, n: number | Tensor): Tensor {
  const total = dimOf(x, 1);
  const count = typeof n === 'number' ? x.graph.root.constant(n, 'int64') : n;
  const start = sub(sub(total, count), 1);
  return slice(x, unsqueeze(start, [0]), unsqueeze(sub(total, 1), [0]), [1]);
}

/** Log-probs [B, N] of the response tokens from the logits of the whole sequence [B, P + N, V]. */
export function responseLogprobs(logits: Tensor, responseIds: Tensor, temperature?: number | Tensor): Tensor {
  return temperedLogprobs(responseColumns(logits, dimOf(responseIds, 1)), responseIds, temperature);
}

/** Entropy [B, N] of the policy at each response step, from the logits of the whole sequence. */
export function responseEntropy(logits: Tensor, responseIds: Tensor, temperature?: number | Tensor): Tensor {
  return tokenEntropy(responseColumns(logits, dimOf(responseIds, 1)), temperature);
}

/** Values [B, N] of the states before each response token (TRL: `values[:, P - 1 : -1]`). */
export function responseValues(values: Tensor, responseIds: Tensor): Tensor {
  return responseColumns(values, dimOf(responseIds, 1));
}

/** Index [B] of the last real token of each row: the largest column with mask 1 (0 for an all-padding row). */
export function lastTokenIndex(mask: Tensor): Tensor {
  const m = cast(mask, 'int64');
  const columnPlusOne = add(range(0, dimOf(m, 1)), 1); // real column c -> c + 1, padding -> 0 after the Mul
  return clip(sub(reduceMax(mul(m, columnPlusOne), -1), 1), 0, null);
}

/** The scalar head at the last real token of each row: the reward model's score (InstructGPT §3.5). */
export function sequenceScores(values: Tensor, mask: Tensor): Tensor {
  const last = unsqueeze(lastTokenIndex(mask), [1]);
  return squeeze(gatherElements(values, last, 1), [1]);
}

export interface ScoreOptions {
  /** Logits are divided by it before log-probs and entropy (default 1; use the sampling temperature). */
  temperature?: number | Tensor;
  /** Recompute every layer in the backward pass (GptForwardOptions.recompute). */
  recompute?: boolean;
}

export interface ScoreOutputs {
  /** log π(response token) [B, N]; meaningful where responseMask = 1. */
  logprobs: Tensor;
  /** Entropy of π at each response step [B, N]. */
  entropy: Tensor;
  /** Scalar head at the state before each response token [B, N] (critic), when config.scalarHead. */
  values?: Tensor;
  /** Scalar head at the last real token of prompt + response [B] (reward model), when config.scalarHead. */
  scores?: Tensor;
}

/** One forward pass over prompt + response, read out as per-token log-probs, entropy, values and scores. */
export function scoreResponses(
  params: GptParams,
  config: GptConfig,
  batch: ResponseBatch,
  options: ScoreOptions = {},
): ScoreOutputs {
  const { ids, mask } = sequenceOf(batch);
  const { hidden } = gptHidden(params, config, ids, { attentionMask: mask, recompute: options.recompute });
  // The LM head only at the columns that predict response tokens: the prompt columns' logits are never used.
  const responseHidden = responseColumns(hidden, dimOf(batch.responseIds, 1));
  const logp = logProbs(lmHead(params, responseHidden), options.temperature);
  const result: ScoreOutputs = { logprobs: pickLogProbs(logp, batch.responseIds), entropy: entropyOf(logp) };
  if (config.scalarHead) {
    const values = scalarHead(params, hidden);
    result.values = responseValues(values, batch.responseIds);
    result.scores = sequenceScores(values, mask);
  }
  return result;
}

export type ScoreOutputName = keyof ScoreOutputs;

export interface ScoringGraphOptions {
  dtype?: ModelDtype;
  /** Outputs to compute (default: logprobs and entropy, plus values and scores with a scalar head). */
  outputs?: readonly ScoreOutputName[];
}

/**
 * A standalone scoring graph. Inputs: the parameters, `prompt_ids` / `prompt_mask` int64 [B, P],
 * `response_ids` / `response_mask` int64 [B, N], `temperature` (dtype scalar; only with logprobs or entropy).
 * Outputs as named in ScoreOutputs: `logprobs`, `entropy`, `values` [B, N] and `scores` [B].
 */
export function buildScoringGraph(config: GptConfig, options: ScoringGraphOptions = {}): Uint8Array {
  validateConfig(config);
  const dtype: DType = options.dtype ?? 'float32';
  const outputs = options.outputs ?? defaultOutputs(config);
  if (outputs.length === 0) throw new Error('buildScoringGraph: no outputs asked for');
  for (const name of outputs)
    if ((name === 'values' || name === 'scores') && !config.scalarHead)
      throw new Error(`buildScoringGraph: output "${name}" needs a config with scalarHead`);
  const g = new Graph('score');
  const params = gptParamInputs(g, config, dtype);
  const batch: ResponseBatch = {
    promptIds: g.input('prompt_ids', 'int64', ['batch', 'prompt']),
    promptMask: g.input('prompt_mask', 'int64', ['batch', 'prompt']),
    responseIds: g.input('response_ids', 'int64', ['batch', 'response']),
    responseMask: g.input('response_mask', 'int64', ['batch', 'response']),
  };
  const needsTemperature = outputs.includes('logprobs') || outputs.includes('entropy');
  const temperature = needsTemperature ? g.input('temperature', dtype, []) : undefined;
  const scored = scoreResponses(params, config, batch, { temperature });
  for (const name of outputs) g.output(scored[name]!, name);
  return g.toBytes();
}

function defaultOutputs(config: GptConfig): ScoreOutputName[] {
  return config.scalarHead ? ['logprobs', 'entropy', 'values', 'scores'] : ['logprobs', 'entropy'];
}

/** Host-side scoring: one session, rows of numbers in and out. */
export interface Scorer {
  score(request: ScoreRequest): Promise<ScoreResult>;
  release(): Promise<void>;
}

export interface ScoreRequest {
  params: HostParams;
  /** Prompt token ids per row; left-padded with padId exactly as the generator does. */
  prompts: readonly (readonly number[])[];
  padId: number;
  /** [B][N] response tokens and masks (the generator's output). */
  responses: readonly (readonly number[])[];
  responseMask: readonly (readonly number[])[];
  temperature?: number;
}

export interface ScoreResult {
  logprobs?: number[][];
  entropy?: number[][];
  values?: number[][];
  scores?: number[];
}

/** Creates the scoring session once; call score() per batch. */
export async function createScorer(
  runtime: Runtime,
  config: GptConfig,
  options: ScoringGraphOptions = {},
): Promise<Scorer> {
  const dtype = options.dtype ?? 'float32';
  const outputs = options.outputs ?? defaultOutputs(config);
  const session: Session = await runtime.createSession(buildScoringGraph(config, options), { name: 'score' });
  return {
    async score(request) {
      const [B, N] = [request.responses.length, request.responses[0]?.length ?? 0];
      const prompt = leftPad(request.prompts, request.padId);
      const feeds: Record<string, HostTensor> = {
        ...paramFeeds(config, request.params, dtype),
        prompt_ids: prompt.ids,
        prompt_mask: prompt.mask,
        response_ids: int64([B, N], request.responses.flat()),
        response_mask: int64([B, N], request.responseMask.flat()),
      };
      if (session.inputNames.includes('temperature'))
        feeds.temperature = hostTensor(dtype, [], [request.temperature ?? 1]);
      const out = await session.run(feeds);
      const rows = (t: HostTensor) => {
        const data = t.data as Float32Array;
        return Array.from({ length: B }, (_, b) => Array.from(data.subarray(b * N, (b + 1) * N)));
      };
      const result: ScoreResult = {};
      for (const name of outputs) {
        if (name === 'scores') result.scores = Array.from(out.scores.data as Float32Array);
        else result[name] = rows(out[name]);
      }
      return result;
    },
    release: () => session.release(),
  };
}
