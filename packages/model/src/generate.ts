// Sampling from the GPT in one session.run: prefill and every decode step run inside one ONNX Loop with the
// KV cache carried between iterations (docs/DESIGN.md: a host round trip per step is ~32x slower on a GPU).
//
// Decisions:
// - Randomness comes from the host: `uniforms` [N, B] in [0, 1), drawn from a seeded PRNG. The same graph then
//   gives new samples on every call, a seed reproduces them exactly, and the number of new tokens N is simply
//   the number of rows of `uniforms` (one graph serves every batch size, prompt length and N).
// - Sampling is by inverse CDF over the vocabulary sorted by logit (TopK, Softmax, CumSum): temperature, then
//   top-k, then top-p (nucleus, Holtzman et al. 2020), the order HF's warpers apply them. temperature <= 0 is
//   greedy (argmax).
// - Reported log-probs are those of the sampled token under softmax(logits / temperature) before top-k/top-p
//   filtering (temperature 1 when greedy), as TRL's PPO computes them; scoring with the same temperature
//   (score.ts) reproduces them, so the PPO ratio starts at 1.
// - Per-row stop: after a row samples EOS it emits padId with mask 0 and log-prob 0; the loop ends when every
//   row has finished (or after N steps) and the outputs are padded back to N columns.
import {
  and,
  cast,
  concat,
  constantOfShape,
  cumsum,
  dimOf,
  equal,
  expand,
  gather,
  gatherElements,
  Graph,
  greater,
  greaterOrEqual,
  less,
  lessOrEqual,
  loop,
  min,
  not,
  or,
  range,
  reduceMax,
  reduceSum,
  slice,
  softmax,
  squeeze,
  sub,
  type Tensor,
  topk,
  transpose,
  unsqueeze,
  where,
} from '@rlhf/graph';
import { hostTensor, type Runtime, type Session } from '@rlhf/runtime';
import { type GptConfig, headDimOf, kvHeadsOf, validateConfig } from './config.js';
import { paramDtype } from './decoder.js';
import { type HostParams, leftPad, type ModelDtype, paramFeeds, toRows } from './feeds.js';
import {
  type GptParams,
  gptHidden,
  gptParamInputs,
  type KvCache,
  kvShape,
  lmHead,
  lmHeadWeight,
} from './gpt.js';
import type { LoraSettings } from './lora.js';
import { adaptedParams, adapterFeeds, adapterInputs } from './lora-graph.js';
import { createRng } from './random.js';
import { temperedLogprobs, withTemperature } from './score.js';

/** Scalar sampling settings as graph tensors. */
export interface SamplingInputs {
  /** dtype scalar; <= 0 means greedy. */
  temperature: Tensor;
  /** int64 scalar; <= 0 keeps the whole vocabulary. */
  topK: Tensor;
  /** dtype scalar in (0, 1]; 1 keeps the whole vocabulary. */
  topP: Tensor;
}

/** The temperature logits are divided by: the given one, or 1 when greedy (temperature <= 0). */
export function effectiveTemperature(temperature: Tensor): Tensor {
  return where(greater(temperature, 0), temperature, 1);
}

/**
 * Next tokens int64 [B] from logits [B, V] and one uniform number per row [B]: inverse-CDF sampling of
 * softmax(logits / T) restricted to the top-k tokens, then to the smallest prefix of them whose mass reaches
 * top-p (the token that crosses top-p is kept; the most likely token always is).
 */
export function sampleTokens(logits: Tensor, uniform: Tensor, sampling: SamplingInputs): Tensor {
  const vocab = logits.shape[1];
  if (typeof vocab !== 'number') throw new Error('sampleTokens: the vocabulary size must be known');
  const greedy = lessOrEqual(sampling.temperature, 0);
  const scaled = withTemperature(logits, effectiveTemperature(sampling.temperature));
  const { values: sorted, indices: order } = topk(scaled, vocab); // descending
  const rank = range(logits.graph.root.constant(0, 'int64'), vocab); // [V]
  const k = where(greater(sampling.topK, 0), sampling.topK, vocab);
  const inTopK = less(rank, k);
  const massBefore = cumsum(softmax(where(inTopK, sorted, Number.NEGATIVE_INFINITY), 1), 1, {
    exclusive: true,
  });
  const inTopP = or(or(less(massBefore, sampling.topP), greaterOrEqual(sampling.topP, 1)), equal(rank, 0));
  const keep = and(inTopK, inTopP); // a prefix of the sorted vocabulary
  const cdf = cumsum(softmax(where(keep, sorted, Number.NEGATIVE_INFINITY), 1), 1);
  // First rank whose CDF exceeds u; the Min guards against rounding leaving cdf[last kept] just below u.
  const below = reduceSum(cast(lessOrEqual(cdf, unsqueeze(uniform, [1])), 'int64'), 1);
  const lastKept = sub(reduceSum(cast(keep, 'int64'), 1), 1);
  const pick = where(greedy, 0, min(below, lastKept));
  return squeeze(gatherElements(order, unsqueeze(pick, [1]), 1), [1]);
}

/** Graph inputs of a generation. */
export interface GenerationInputs extends SamplingInputs {
  /** int64 [B, P], left-padded. */
  promptIds: Tensor;
  /** int64 [B, P], 1 = real token. */
  promptMask: Tensor;
  /** dtype [N, B] in [0, 1): one random number per step and row; N = number of new tokens. */
  uniforms: Tensor;
  /** int64 scalars. eosId outside the vocabulary (e.g. -1) never stops a row. */
  eosId: Tensor;
  padId: Tensor;
}

export interface GenerationOutputs {
  /** int64 [B, N]: sampled tokens, padId after a row's EOS. */
  tokens: Tensor;
  /** dtype [B, N]: log π(token) at the sampling temperature, 0 where mask is 0. */
  logprobs: Tensor;
  /** int64 [B, N]: 1 up to and including EOS, 0 after. */
  mask: Tensor;
  /** bool [B]: the row generated EOS. */
  finished: Tensor;
}

/** Prefill + decode in one Loop: iteration 0 feeds the prompt, later ones the previous token with the KV cache. */
export function generateTokens(
  params: GptParams,
  config: GptConfig,
  inputs: GenerationInputs,
): GenerationOutputs {
  const { promptIds, promptMask, uniforms, eosId, padId } = inputs;
  const dtype = paramDtype(params);
  const batch = dimOf(promptIds, 0);
  const steps = dimOf(uniforms, 0);
  const emptyKv = constantOfShape([batch, kvHeadsOf(config), 0, headDimOf(config)], dtype, 0);
  const layers = Array.from({ length: config.nLayer }, () => [emptyKv, emptyKv]).flat();
  const root = promptIds.graph.root;
  const headWeight = lmHeadWeight(params); // outside the Loop: transposed once, not per step

  const { carried, scans } = loop({
    name: 'decode',
    trips: steps,
    cond: root.constant(1, 'bool'),
    carried: [promptIds, cast(promptMask, 'int64'), constantOfShape([batch], 'bool', 0), ...layers],
    carriedShapes: [
      ['batch', null],
      ['batch', null],
      ['batch'],
      ...layers.map(() => kvShape(config, 'batch', null)),
    ],
    body: (step, [ids, mask, done, ...kv]) => {
      const pastKv: KvCache[] = Array.from({ length: config.nLayer }, (_, i) => ({
        key: kv[2 * i],
        value: kv[2 * i + 1],
      }));
      const { hidden, presentKv } = gptHidden(params, config, ids, { attentionMask: mask, pastKv });
      const logits = lmHead(params, squeeze(slice(hidden, [-1], [2 ** 31 - 1], [1]), [1]), headWeight); // [B, V]
      const sampled = sampleTokens(logits, gather(uniforms, step), inputs);
      const logprob = temperedLogprobs(logits, sampled, effectiveTemperature(inputs.temperature));
      const token = where(done, padId, sampled);
      const nowDone = or(done, equal(sampled, eosId));
      const ones = expand(root.constant([1], 'int64', [1, 1]), [batch, 1]);
      return {
        carried: [
          unsqueeze(token, [1]),
          concat([mask, ones], 1),
          nowDone,
          ...presentKv.flatMap((c) => [c.key, c.value]),
        ],
        scans: [token, where(done, 0, logprob), cast(not(done), 'int64')],
        cond: greater(reduceMax(cast(not(nowDone), 'int64')), 0),
      };
    },
  });

  // The loop may stop before N steps (every row finished): pad the [steps run, B] scans to [B, N].
  const [tokens, logprobs, mask] = scans.map((t) => transpose(t, [1, 0]));
  const missing = sub(steps, dimOf(tokens, 1));
  const fill = (t: Tensor, value: Tensor | number) =>
    concat(
      [
        t,
        typeof value === 'number'
          ? constantOfShape([batch, missing], t.dtype, value)
          : expand(value, [batch, missing]),
      ],
      1,
    );
  return {
    tokens: fill(tokens, padId),
    logprobs: fill(logprobs, 0),
    mask: fill(mask, 0),
    finished: carried[2],
  };
}

export interface GenerationGraphOptions {
  /** Float type of parameters, temperature, top_p, uniforms and log-probs (default float32). */
  dtype?: ModelDtype;
  /** Generate with a LoRA adapter on the base, unmerged: its tensors are inputs beside the base's (adapterInput). */
  lora?: LoraSettings;
}

/**
 * The generation graph. Inputs: the parameters; `prompt_ids`, `prompt_mask` int64 [B, P] (left-padded);
 * `uniforms` [N, B]; `temperature`, `top_p` (dtype scalars); `top_k`, `eos_id`, `pad_id` (int64 scalars).
 * Outputs: `tokens` int64 [B, N], `logprobs` [B, N], `mask` int64 [B, N], `finished` bool [B].
 */
export function buildGenerationGraph(config: GptConfig, options: GenerationGraphOptions = {}): Uint8Array {
  validateConfig(config);
  const dtype = options.dtype ?? 'float32';
  const g = new Graph('generate');
  const base = gptParamInputs(g, config, dtype);
  const params = options.lora
    ? adaptedParams(base, adapterInputs(g, config, options.lora, dtype), options.lora)
    : base;
  const out = generateTokens(params, config, {
    promptIds: g.input('prompt_ids', 'int64', ['batch', 'prompt']),
    promptMask: g.input('prompt_mask', 'int64', ['batch', 'prompt']),
    uniforms: g.input('uniforms', dtype, ['new_tokens', 'batch']),
    temperature: g.input('temperature', dtype, []),
    topK: g.input('top_k', 'int64', []),
    topP: g.input('top_p', dtype, []),
    eosId: g.input('eos_id', 'int64', []),
    padId: g.input('pad_id', 'int64', []),
  });
  g.output(out.tokens, 'tokens');
  g.output(out.logprobs, 'logprobs');
  g.output(out.mask, 'mask');
  g.output(out.finished, 'finished');
  return g.toBytes();
}

export interface GenerateRequest {
  params: HostParams;
  /** The adapter's tensors, for a generator created with `lora`. */
  adapter?: HostParams;
  /** Prompt token ids per row (at least one token each); left-padded with padId inside. */
  prompts: readonly (readonly number[])[];
  maxNewTokens: number;
  /** Default 1; 0 = greedy. */
  temperature?: number;
  /** Default 0 = off. */
  topK?: number;
  /** Default 1 = off. */
  topP?: number;
  /** Seed of the uniforms (default 0): the same seed and inputs give the same samples. */
  seed?: number;
  /** Token that ends a row (-1: none). */
  eosId: number;
  /** Token emitted after EOS and used for left padding (must be in the vocabulary). */
  padId: number;
}

export interface GenerateResult {
  /** [B][N] sampled tokens; padId after EOS (and after an early stop). */
  tokens: number[][];
  /** [B][N] log-probs of the sampled tokens under softmax(logits / temperature); 0 where mask is 0. */
  logprobs: number[][];
  /** [B][N] 1 up to and including EOS, 0 after. */
  mask: number[][];
  /** [B] whether the row generated EOS (false: truncated at maxNewTokens). */
  finished: boolean[];
}

export interface Generator {
  generate(request: GenerateRequest): Promise<GenerateResult>;
  release(): Promise<void>;
}

/** Builds the generation graph and its session once; every generate() is one session.run. */
export async function createGenerator(
  runtime: Runtime,
  config: GptConfig,
  options: GenerationGraphOptions = {},
): Promise<Generator> {
  const dtype = options.dtype ?? 'float32';
  const session: Session = await runtime.createSession(buildGenerationGraph(config, options), {
    name: 'generate',
  });
  return {
    async generate(request) {
      checkRequest(config, request);
      const { prompts, maxNewTokens: N } = request;
      const B = prompts.length;
      const prompt = leftPad(prompts, request.padId);
      const rng = createRng(request.seed ?? 0, 'generate');
      const uniforms = Array.from({ length: N * B }, () => rng.uniform());
      const out = await session.run({
        ...paramFeeds(config, request.params, dtype),
        ...(options.lora && adapterFeeds(config, options.lora, adapterOf(request), dtype)),
        prompt_ids: prompt.ids,
        prompt_mask: prompt.mask,
        uniforms: hostTensor(dtype, [N, B], uniforms),
        temperature: hostTensor(dtype, [], [request.temperature ?? 1]),
        top_k: hostTensor('int64', [], [request.topK ?? 0]),
        top_p: hostTensor(dtype, [], [request.topP ?? 1]),
        eos_id: hostTensor('int64', [], [request.eosId]),
        pad_id: hostTensor('int64', [], [request.padId]),
      });
      return {
        tokens: toRows(out.tokens),
        logprobs: toRows(out.logprobs),
        mask: toRows(out.mask),
        finished: Array.from(out.finished.data as Uint8Array, Boolean),
      };
    },
    release: () => session.release(),
  };
}

function checkRequest(config: GptConfig, r: GenerateRequest): void {
  const V = config.vocabSize;
  const isId = (id: number) => Number.isInteger(id) && id >= 0 && id < V;
  if (r.prompts.length === 0) throw new Error('generate: no prompts');
  if (!Number.isInteger(r.maxNewTokens) || r.maxNewTokens < 1)
    throw new Error(`generate: maxNewTokens must be a positive integer, got ${r.maxNewTokens}`);
  for (const [i, p] of r.prompts.entries()) {
    if (p.length === 0) throw new Error(`generate: prompt ${i} is empty (start it with a BOS token)`);
    const bad = p.find((id) => !isId(id));
    if (bad !== undefined) throw new Error(`generate: prompt ${i} has token ${bad} outside [0, ${V})`);
    if (p.length + r.maxNewTokens > config.maxPositions)
      throw new Error(
        `generate: prompt ${i} (${p.length} tokens) + ${r.maxNewTokens} new tokens exceed maxPositions ${config.maxPositions}`,
      );
  }
  if (!isId(r.padId)) throw new Error(`generate: padId ${r.padId} is outside [0, ${V})`);
  if (!Number.isInteger(r.eosId)) throw new Error(`generate: eosId must be an integer, got ${r.eosId}`);
  const { temperature = 1, topK = 0, topP = 1 } = r;
  if (!(temperature >= 0 && Number.isFinite(temperature)))
    throw new Error(`generate: temperature must be >= 0, got ${temperature}`);
  if (!(Number.isInteger(topK) && topK >= 0))
    throw new Error(`generate: topK must be an integer >= 0, got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new Error(`generate: topP must be in (0, 1], got ${topP}`);
}

function adapterOf(request: GenerateRequest): HostParams {
  if (!request.adapter)
    throw new Error('generate: this generator serves a LoRA adapter; the request has none');
  return request.adapter;
}
