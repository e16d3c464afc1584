// LoRA in graphs: the params map a decoder reads when an adapter is on (decoder.ts withAdapter does the maths), and
// scoring that returns the policy's log-probs (adapter on) and the reference's (the frozen base: adapter off)
// from one graph over one copy of the base weights — the reference model of DPO / PPO / GRPO / RAFT.
import { type DType, Graph, mul, type Tensor } from '@rlhf/graph';
import { type HostTensor, hostTensor, int64, type Runtime, type Session, weightFeeds } from '@rlhf/runtime';
import type { GptConfig } from './config.js';
import { type GptParams, LORA_DROPOUT, LORA_SCALE } from './decoder.js';
import { type HostParams, leftPad, type ModelDtype, paramFeeds } from './feeds.js';
import { gptParamInputs } from './gpt.js';
import { type LoraSettings, loraParamShapes, loraScale } from './lora.js';
import { type ResponseBatch, type ScoreOutputs, scoreResponses } from './score.js';

/** Graph-input name of an adapter tensor (kept apart from the base's, which saved modules share names with). */
export const adapterInput = (name: string) => `adapter.${name}`;

/**
 * The params a decoder reads with the adapter on: the base's, saved modules replaced by the adapter's copies,
 * the lora_A/B tensors, the scale s·adapterScale (0 = the base model) and, for training, the dropout rate.
 */
export function adaptedParams(
  base: GptParams,
  adapter: ReadonlyMap<string, Tensor>,
  settings: LoraSettings,
  options: { adapterScale?: Tensor | number; dropout?: boolean } = {},
): GptParams {
  const params: GptParams = new Map(base);
  for (const [name, t] of adapter) params.set(name, t);
  const first = base.values().next().value as Tensor;
  const root = first.graph.root;
  const s = root.constant(loraScale(settings), first.dtype);
  const adapterScale = options.adapterScale ?? 1;
  params.set(LORA_SCALE, typeof adapterScale === 'number' && adapterScale === 1 ? s : mul(s, adapterScale));
  if (options.dropout && settings.dropout > 0)
    params.set(LORA_DROPOUT, root.constant(settings.dropout, first.dtype));
  return params;
}

/** Declares the adapter's tensors as graph inputs named adapterInput(name). */
export function adapterInputs(
  graph: Graph,
  config: GptConfig,
  settings: LoraSettings,
  dtype: DType = 'float32',
): Map<string, Tensor> {
  return new Map(
    loraParamShapes(config, settings).map(({ name, shape }) => [
      name,
      graph.input(adapterInput(name), dtype, shape),
    ]),
  );
}

/** Feeds for adapterInputs. */
export function adapterFeeds(
  config: GptConfig,
  settings: LoraSettings,
  adapter: HostParams,
  dtype: ModelDtype = 'float32',
): Record<string, HostTensor> {
  return weightFeeds(loraParamShapes(config, settings), adapter, dtype, adapterInput(''));
}

/** One forward with the adapter on and one over the bare base, in the same graph: policy and reference scores. */
export function scoreWithReference(
  base: GptParams,
  adapter: ReadonlyMap<string, Tensor>,
  settings: LoraSettings,
  config: GptConfig,
  batch: ResponseBatch,
  adapterScale?: Tensor,
): { policy: ScoreOutputs; reference: ScoreOutputs } {
  return {
    policy: scoreResponses(adaptedParams(base, adapter, settings, { adapterScale }), config, batch),
    reference: scoreResponses(base, config, batch),
  };
}

/** The outputs of the LoRA scoring graph: the policy's log-probs (adapter on), the reference's (adapter off). */
export type LoraScoreSide = 'policy' | 'reference';

const BOTH_SIDES: readonly LoraScoreSide[] = ['policy', 'reference'];

/**
 * The LoRA scoring graph. Inputs: the base's parameters (paramShapes names), prompt_ids / prompt_mask [B, P],
 * response_ids / response_mask [B, N]; with the policy side also the adapter's (adapterInput names) and
 * `adapter_scale` (dtype scalar: 1 = the trained adapter, 0 = off). Outputs [B, N]: `logprobs` (adapter on) and
 * `ref_logprobs` (base), only the sides asked for (a side not asked for is not in the graph, so not computed).
 */
export function buildLoraScoringGraph(
  config: GptConfig,
  settings: LoraSettings,
  dtype: ModelDtype = 'float32',
  sides: readonly LoraScoreSide[] = BOTH_SIDES,
): Uint8Array {
  if (sides.length === 0) throw new Error('buildLoraScoringGraph: no side asked for');
  const g = new Graph('lora_score');
  const base = gptParamInputs(g, config, dtype);
  const batch: ResponseBatch = {
    promptIds: g.input('prompt_ids', 'int64', ['batch', 'prompt']),
    promptMask: g.input('prompt_mask', 'int64', ['batch', 'prompt']),
    responseIds: g.input('response_ids', 'int64', ['batch', 'response']),
    responseMask: g.input('response_mask', 'int64', ['batch', 'response']),
  };
  if (sides.includes('policy')) {
    const adapter = adapterInputs(g, config, settings, dtype);
    const adapterScale = g.input('adapter_scale', dtype, []);
    const params = adaptedParams(base, adapter, settings, { adapterScale });
    g.output(scoreResponses(params, config, batch).logprobs, 'logprobs');
  }
  if (sides.includes('reference')) g.output(scoreResponses(base, config, batch).logprobs, 'ref_logprobs');
  return g.toBytes();
}

export interface LoraScoreRequest {
  base: HostParams;
  /** The adapter's tensors; only read by a scorer with the policy side. */
  adapter?: HostParams;
  /** Multiplies the adapter's update (default 1). */
  adapterScale?: number;
  /** Prompt token ids per row, left-padded with padId as the generator does. */
  prompts: readonly (readonly number[])[];
  padId: number;
  responses: readonly (readonly number[])[];
  responseMask: readonly (readonly number[])[];
}

/** Per response token: the policy's log-probs and the reference's, each only from a scorer with that side. */
export interface LoraScores {
  logprobs?: number[][];
  refLogprobs?: number[][];
}

export interface LoraScorer {
  score(request: LoraScoreRequest): Promise<LoraScores>;
  release(): Promise<void>;
}

/**
 * Host side of buildLoraScoringGraph: one session over one copy of the base. `sides` (default both) are the
 * outputs computed: a reference-only scorer is the base's scoring graph (no adapter fed), a policy-only one
 * skips the second forward.
 */
export async function createLoraScorer(
  runtime: Runtime,
  config: GptConfig,
  settings: LoraSettings,
  dtype: ModelDtype = 'float32',
  sides: readonly LoraScoreSide[] = BOTH_SIDES,
): Promise<LoraScorer> {
  const bytes = buildLoraScoringGraph(config, settings, dtype, sides);
  const session: Session = await runtime.createSession(bytes, { name: 'lora_score' });
  const policy = sides.includes('policy');
  return {
    async score(request) {
      const [B, N] = [request.responses.length, request.responses[0]?.length ?? 0];
      const prompt = leftPad(request.prompts, request.padId);
      const feeds: Record<string, HostTensor> = {
        ...paramFeeds(config, request.base, dtype),
        prompt_ids: prompt.ids,
        prompt_mask: prompt.mask,
        response_ids: int64([B, N], request.responses.flat()),
        response_mask: int64([B, N], request.responseMask.flat()),
      };
      if (policy) {
        if (!request.adapter) throw new Error('createLoraScorer: the policy side needs request.adapter');
        Object.assign(feeds, adapterFeeds(config, settings, request.adapter, dtype));
        feeds.adapter_scale = hostTensor(dtype, [], [request.adapterScale ?? 1]);
      }
      const out = await session.run(feeds);
      const rows = (t: HostTensor) => {
        const data = t.data as Float32Array | Float64Array;
        return Array.from({ length: B }, (_, b) => Array.from(data.subarray(b * N, (b + 1) * N)));
      };
      const result: LoraScores = {};
      if (policy) result.logprobs = rows(out.logprobs);
      if (sides.includes('reference')) result.refLogprobs = rows(out.ref_logprobs);
      return result;
    },
    release: () => session.release(),
  };
}
