// Sampling from the GPT in one session.run: prefill and every decode step run inside one ONNX Loop with the
// KV cache carried between iterations (docs/DESIGN.md: a host round trip per step is ~32x slower on a GPU).
//
// Decisions:
// - Randomness comes from the host: `uniforms` [N, B] in [0, 1), drawn from a seeded PRNG. The same graph then
//   gives new samples on every call, a seed reproduces them exactly, and the number of new tokens N is simply
//   the number of rows of `uniforms` (one graph serves every batch size, prompt length and N).
// - Sampling is by inverse CDF (sampler.ts): over the unsorted vocabulary when no filter is asked for, over
//   TopK(k) candidates for top-k / top-p (nucleus, Holtzman et al. 2020), in HF's warper order. temperature <= 0
//   is greedy (argmax). The variant is chosen when the graph is built; createGenerator keeps a session per
//   variant it has been asked for.
// - top_logprobs: a graph built with topLogprobs = K also returns, per step, the K most likely tokens and their
//   log-probs under the same distribution as the sampled token's (TopK(K) of the log-softmax).
// - Reported log-probs are those of the sampled token under softmax(logits / temperature) before top-k/top-p
//   filtering (temperature 1 when greedy), as TRL's PPO computes them; scoring with the same temperature
//   (score.ts) reproduces them, so the PPO ratio starts at 1.
// - Prompt tuning (Lester et al. 2021): params holding prompt_embeddings [P, d] run the P virtual tokens once before
//   the Loop (they see only each other), so the Loop starts from their KV cache and a mask with P ones in front:
//   the same sequence, positions and attention as the training forward on [virtual ; prompt].
// - Per-row stop: after a row samples EOS it emits padId with mask 0 and log-prob 0; the loop ends when every
//   row has finished (or after N steps) and the outputs are padded back to N columns.
import {
  cast,
  concat,
  constantOfShape,
  dimOf,
  equal,
  expand,
  gather,
  Graph,
  greater,
  loop,
  not,
  or,
  reduceMax,
  slice,
  squeeze,
  sub,
  type Tensor,
  transpose,
  unsqueeze,
  where,
} from '@rlhf/graph';
import { type HostTensor, hostTensor, type KeptFeeds, type Runtime, type Session } from '@rlhf/runtime';
import { type GptConfig, headDimOf, kvHeadsOf, validateConfig } from './config.js';
import { PROMPT_EMBEDDINGS, paramDtype } from './decoder.js';
import { type HostParams, leftPad, type ModelDtype, toRows } from './feeds.js';
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
import type { PromptTuningSettings } from './prompt-tuning.js';
import { adaptedParams, adapterFeeds, adapterInputs } from './lora-graph.js';
import { createRng } from './random.js';
import { residentParams } from './resident.js';
import {
  effectiveTemperature,
  type SamplerKind,
  type SamplingInputs,
  sampleTokens,
  samplerFor,
  topAlternatives,
} from './sampler.js';
import { temperedLogprobs } from './score.js';

/** The most alternatives a step reports (OpenAI's top_logprobs limit). */
export const MAX_TOP_LOGPROBS = 20;

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

/** How the graph samples: the sampler variant, and how many alternatives per step it reports (0: none). */
export interface SamplerOptions {
  sampler?: SamplerKind;
  topLogprobs?: number;
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
  /** With topLogprobs = K: int64 [B, N, K] the most likely tokens per step, dtype [B, N, K] their log-probs. */
  topIds?: Tensor;
  topLogprobs?: Tensor;
}

/** Prefill + decode in one Loop: iteration 0 feeds the prompt, later ones the previous token with the KV cache. */
export function generateTokens(
  params: GptParams,
  config: GptConfig,
  inputs: GenerationInputs,
  options: SamplerOptions = {},
): GenerationOutputs {
  const { promptIds, promptMask, uniforms, eosId, padId } = inputs;
  const alternatives = options.topLogprobs ?? 0;
  const dtype = paramDtype(params);
  const batch = dimOf(promptIds, 0);
  const steps = dimOf(uniforms, 0);
  const root = promptIds.graph.root;
  const headWeight = lmHeadWeight(params); // outside the Loop: transposed once, not per step
  const virtual = params.has(PROMPT_EMBEDDINGS) ? virtualPrefill(params, config, batch) : null;
  const emptyKv = constantOfShape([batch, kvHeadsOf(config), 0, headDimOf(config)], dtype, 0);
  const layers = virtual?.kv ?? Array.from({ length: config.nLayer }, () => [emptyKv, emptyKv]).flat();
  const startMask = cast(promptMask, 'int64');
  const bodyParams = virtual?.params ?? params;

  const { carried, scans } = loop({
    name: 'decode',
    trips: steps,
    cond: root.constant(1, 'bool'),
    carried: [
      promptIds,
      virtual ? concat([virtual.mask, startMask], 1) : startMask,
      constantOfShape([batch], 'bool', 0),
      ...layers,
    ],
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
      const { hidden, presentKv } = gptHidden(bodyParams, config, ids, { attentionMask: mask, pastKv });
      const logits = lmHead(params, squeeze(slice(hidden, [-1], [2 ** 31 - 1], [1]), [1]), headWeight); // [B, V]
      const sampled = sampleTokens(logits, gather(uniforms, step), inputs, options.sampler ?? 'filtered');
      const logprob = temperedLogprobs(logits, sampled, effectiveTemperature(inputs.temperature));
      const token = where(done, padId, sampled);
      const nowDone = or(done, equal(sampled, eosId));
      const ones = expand(root.constant([1], 'int64', [1, 1]), [batch, 1]);
      const top = alternatives > 0 ? topAlternatives(logits, inputs.temperature, alternatives) : null;
      return {
        carried: [
          unsqueeze(token, [1]),
          concat([mask, ones], 1),
          nowDone,
          ...presentKv.flatMap((c) => [c.key, c.value]),
        ],
        scans: [
          token,
          where(done, 0, logprob),
          cast(not(done), 'int64'),
          ...(top ? [top.ids, top.logprobs] : []),
        ],
        cond: greater(reduceMax(cast(not(nowDone), 'int64')), 0),
      };
    },
  });

  // The loop may stop before N steps (every row finished): pad the [steps run, B, …] scans to [B, N, …].
  const [tokens, logprobs, mask, ...top] = scans.map((t) => transpose(t, t.rank === 3 ? [1, 0, 2] : [1, 0]));
  const missing = sub(steps, dimOf(tokens, 1));
  const fill = (t: Tensor, value: Tensor | number) =>
    concat(
      [
        t,
        typeof value === 'number'
          ? constantOfShape(t.rank === 3 ? [batch, missing, alternatives] : [batch, missing], t.dtype, value)
          : expand(value, [batch, missing]),
      ],
      1,
    );
  return {
    tokens: fill(tokens, padId),
    logprobs: fill(logprobs, 0),
    mask: fill(mask, 0),
    finished: carried[2],
    ...(top.length === 2 ? { topIds: fill(top[0], 0), topLogprobs: fill(top[1], 0) } : {}),
  };
}

/**
 * Prompt tuning's virtual tokens through the decoder alone (no real token yet): their keys and values per layer
 * [B, kvHeads, P, headDim], the mask's P ones, and the params without the prompt for the Loop's body.
 */
function virtualPrefill(params: GptParams, config: GptConfig, batch: Tensor) {
  const none = constantOfShape([batch, 0], 'int64', 0);
  const { presentKv } = gptHidden(params, config, none);
  const prompt = params.get(PROMPT_EMBEDDINGS) as Tensor;
  const rest: GptParams = new Map([...params].filter(([name]) => name !== PROMPT_EMBEDDINGS));
  return {
    kv: presentKv.flatMap((c) => [c.key, c.value]),
    mask: constantOfShape([batch, dimOf(prompt, 0)], 'int64', 1),
    params: rest,
  };
}

export interface GenerationGraphOptions extends SamplerOptions {
  /** Float type of parameters, temperature, top_p, uniforms and log-probs (default float32). */
  dtype?: ModelDtype;
  /** Generate with a LoRA adapter on the base, unmerged: its tensors are inputs beside the base's (adapterInput). */
  lora?: LoraSettings;
  /** Generate with prompt tuning's virtual tokens: an input `prompt_embeddings` [P, d] before every prompt. */
  promptTuning?: PromptTuningSettings;
}

/**
 * The generation graph. Inputs: the parameters; `prompt_ids`, `prompt_mask` int64 [B, P] (left-padded);
 * `uniforms` [N, B]; `temperature`, `top_p` (dtype scalars); `top_k`, `eos_id`, `pad_id` (int64 scalars); with
 * promptTuning `prompt_embeddings` [P, d].
 * Outputs: `tokens` int64 [B, N], `logprobs` [B, N], `mask` int64 [B, N], `finished` bool [B]; with
 * topLogprobs = K also `top_ids` int64 [B, N, K] and `top_logprobs` [B, N, K] (0 after a row's EOS).
 * sampler 'plain' (temperature / greedy only, no sort) ignores top_k and top_p; the default 'filtered' honours them.
 */
export function buildGenerationGraph(config: GptConfig, options: GenerationGraphOptions = {}): Uint8Array {
  validateConfig(config);
  const dtype = options.dtype ?? 'float32';
  const alternatives = options.topLogprobs ?? 0;
  if (!Number.isInteger(alternatives) || alternatives < 0 || alternatives > config.vocabSize)
    throw new Error(`generation graph: topLogprobs must be an integer in [0, ${config.vocabSize}]`);
  const g = new Graph('generate');
  const base = gptParamInputs(g, config, dtype);
  if (options.lora && options.promptTuning)
    throw new Error('generation graph: lora and promptTuning are two adapters, one at a time');
  const params = options.lora
    ? adaptedParams(base, adapterInputs(g, config, options.lora, dtype), options.lora)
    : base;
  if (options.promptTuning)
    params.set(
      PROMPT_EMBEDDINGS,
      g.input(PROMPT_EMBEDDINGS, dtype, [options.promptTuning.numVirtualTokens, config.nEmbd]),
    );
  const out = generateTokens(
    params,
    config,
    {
      promptIds: g.input('prompt_ids', 'int64', ['batch', 'prompt']),
      promptMask: g.input('prompt_mask', 'int64', ['batch', 'prompt']),
      uniforms: g.input('uniforms', dtype, ['new_tokens', 'batch']),
      temperature: g.input('temperature', dtype, []),
      topK: g.input('top_k', 'int64', []),
      topP: g.input('top_p', dtype, []),
      eosId: g.input('eos_id', 'int64', []),
      padId: g.input('pad_id', 'int64', []),
    },
    options,
  );
  g.output(out.tokens, 'tokens');
  g.output(out.logprobs, 'logprobs');
  g.output(out.mask, 'mask');
  g.output(out.finished, 'finished');
  if (out.topIds && out.topLogprobs) {
    g.output(out.topIds, 'top_ids');
    g.output(out.topLogprobs, 'top_logprobs');
  }
  return g.toBytes();
}

export interface GenerateRequest {
  params: HostParams;
  /** The adapter's tensors, for a generator created with `lora` (or `promptTuning`: prompt_embeddings [P, d]). */
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
  /** The uniforms [maxNewTokens, B] themselves, instead of the seed's (a batch split into calls keeps its draws). */
  uniforms?: Float64Array;
  /** Token that ends a row (-1: none). */
  eosId: number;
  /** Token emitted after EOS and used for left padding (must be in the vocabulary). */
  padId: number;
  /** Also report the k (<= MAX_TOP_LOGPROBS) most likely tokens of every step (default 0: none). */
  topLogprobs?: number;
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
  /** With topLogprobs = k: [B][N][k] the most likely tokens of each step, most likely first, and their log-probs. */
  top?: { ids: number[][][]; logprobs: number[][][] };
}

export interface Generator {
  generate(request: GenerateRequest): Promise<GenerateResult>;
  release(): Promise<void>;
}

/**
 * Builds the generation graph and its session once per variant a request needs (the plain sampler at once, the
 * filtered one and the top-logprobs one when first asked for); every generate() is one session.run.
 */
export async function createGenerator(
  runtime: Runtime,
  config: GptConfig,
  options: GenerationGraphOptions = {},
): Promise<Generator> {
  const dtype = options.dtype ?? 'float32';
  const sessions = new Map<string, Promise<Session>>();
  const sessionFor = (variant: SamplerOptions) => {
    const key = `${variant.sampler}/${variant.topLogprobs}`;
    let session = sessions.get(key);
    if (!session) {
      session = runtime.createSession(buildGenerationGraph(config, { ...options, ...variant }), {
        name: `generate ${key}`,
      });
      sessions.set(key, session);
      session.catch(() => sessions.delete(key));
    }
    return session;
  };
  await sessionFor({ sampler: 'plain', topLogprobs: 0 });
  const resident = residentParams(runtime, config, dtype); // params cross to the ORT thread once, not per call
  return {
    async generate(request) {
      const { promptTuning } = options;
      const virtualFeeds = promptTuning && promptFeeds(config, promptTuning, adapterOf(request), dtype);
      checkRequest(config, request, promptTuning?.numVirtualTokens ?? 0);
      const { prompts, maxNewTokens: N } = request;
      const B = prompts.length;
      const k = request.topLogprobs ?? 0;
      const session = await sessionFor({
        sampler: samplerFor(request),
        topLogprobs: k > 0 ? MAX_TOP_LOGPROBS : 0,
      });
      const prompt = leftPad(prompts, request.padId);
      const uniforms = request.uniforms ?? generationUniforms(request.seed ?? 0, N, B);
      if (uniforms.length !== N * B)
        throw new Error(`generate: ${uniforms.length} uniforms for ${N} new tokens × ${B} rows`);
      const run = (kept: KeptFeeds) => session.run(feeds, undefined, { kept: [kept] });
      const feeds = {
        ...(options.lora && adapterFeeds(config, options.lora, adapterOf(request), dtype)),
        ...virtualFeeds,
        prompt_ids: prompt.ids,
        prompt_mask: prompt.mask,
        uniforms: hostTensor(dtype, [N, B], uniforms),
        temperature: hostTensor(dtype, [], [request.temperature ?? 1]),
        top_k: hostTensor('int64', [], [request.topK ?? 0]),
        top_p: hostTensor(dtype, [], [request.topP ?? 1]),
        eos_id: hostTensor('int64', [], [request.eosId]),
        pad_id: hostTensor('int64', [], [request.padId]),
      };
      const out = await resident.with(request.params, run);
      return {
        tokens: toRows(out.tokens),
        logprobs: toRows(out.logprobs),
        mask: toRows(out.mask),
        finished: Array.from(out.finished.data as Uint8Array, Boolean),
        ...(k > 0 ? { top: topRows(out.top_ids, out.top_logprobs, k) } : {}),
      };
    },
    async release() {
      for (const session of sessions.values()) await (await session).release();
      sessions.clear();
      await resident.release();
    },
  };
}

/** The uniforms [N, B] (row-major) a generation of B rows and N new tokens draws from `seed`. */
export function generationUniforms(seed: number, newTokens: number, rows: number): Float64Array {
  const rng = createRng(seed, 'generate');
  return Float64Array.from({ length: newTokens * rows }, () => rng.uniform());
}

/** [B, N, K] outputs as [B][N][k] rows (the first k of K). */
function topRows(
  ids: HostTensor,
  logprobs: HostTensor,
  k: number,
): { ids: number[][][]; logprobs: number[][][] } {
  const [B, N, K] = ids.dims;
  const rows = (t: HostTensor) =>
    Array.from({ length: B }, (_, b) =>
      Array.from({ length: N }, (_, n) =>
        Array.from({ length: k }, (_, j) => Number(t.data[(b * N + n) * K + j])),
      ),
    );
  return { ids: rows(ids), logprobs: rows(logprobs) };
}

/** The prompt-tuning feed: prompt_embeddings [P, d] from the request's adapter. */
export function promptFeeds(
  config: GptConfig,
  settings: PromptTuningSettings,
  adapter: HostParams,
  dtype: ModelDtype = 'float32',
): Record<string, HostTensor> {
  const shape = [settings.numVirtualTokens, config.nEmbd];
  const data = adapter.get(PROMPT_EMBEDDINGS);
  if (data?.length !== shape[0] * shape[1])
    throw new Error(`generate: the adapter's ${PROMPT_EMBEDDINGS} must hold [${shape}] values`);
  return { [PROMPT_EMBEDDINGS]: hostTensor(dtype, shape, data) };
}

/** `virtual`: prompt tuning's virtual tokens, which take positions before every prompt. */
function checkRequest(config: GptConfig, r: GenerateRequest, virtual = 0): void {
  const V = config.vocabSize;
  const isId = (id: number) => Number.isInteger(id) && id >= 0 && id < V;
  if (r.prompts.length === 0) throw new Error('generate: no prompts');
  if (!Number.isInteger(r.maxNewTokens) || r.maxNewTokens < 1)
    throw new Error(`generate: maxNewTokens must be a positive integer, got ${r.maxNewTokens}`);
  for (const [i, p] of r.prompts.entries()) {
    if (p.length === 0) throw new Error(`generate: prompt ${i} is empty (start it with a BOS token)`);
    const bad = p.find((id) => !isId(id));
    if (bad !== undefined) throw new Error(`generate: prompt ${i} has token ${bad} outside [0, ${V})`);
    if (virtual + p.length + r.maxNewTokens > config.maxPositions)
      throw new Error(
        `generate: prompt ${i} (${p.length} tokens${virtual ? ` after ${virtual} virtual ones` : ''}) + ${r.maxNewTokens} new tokens exceed maxPositions ${config.maxPositions}`,
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
  const { topLogprobs = 0 } = r;
  if (!(Number.isInteger(topLogprobs) && topLogprobs >= 0 && topLogprobs <= MAX_TOP_LOGPROBS))
    throw new Error(
      `generate: topLogprobs must be an integer in [0, ${MAX_TOP_LOGPROBS}], got ${topLogprobs}`,
    );
}

function adapterOf(request: GenerateRequest): HostParams {
  if (!request.adapter)
    throw new Error(
      'generate: this generator serves an adapter (LoRA or prompt tuning); the request has none',
    );
  return request.adapter;
}
