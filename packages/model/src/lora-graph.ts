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

/**
 * The LoRA scoring graph. Inputs: the base's parameters (paramShapes names), the adapter's (adapterInput names),
 * `adapter_scale` (dtype scalar: 1 = the trained adapter, 0 = off), prompt_ids / prompt_mask [B, P],
 * response_ids / response_mask [B, N]. Outputs: `logprobs` (adapter on) and `ref_logprobs` (base) [B, N].
 */
export function buildLoraScoringGraph(
  config: GptConfig,
  settings: LoraSettings,
  dtype: ModelDtype = 'float32',
): Uint8Array {
  const g = new Graph('lora_score');
  const base = gptParamInputs(g, config, dtype);
  const adapter = adapterInputs(g, config, settings, dtype);
  const adapterScale = g.input('adapter_scale', dtype, []);
  const batch: ResponseBatch = {
    promptIds: g.input('prompt_ids', 'int64', ['batch', 'prompt']),
    promptMask: g.input('prompt_mask', 'int64', ['batch', 'prompt']),
    responseIds: g.input('response_ids', 'int64', ['batch', 'response']),
    responseMask: g.input('response_mask', 'int64', ['batch', 'response']),
  };
  const { policy, reference } = scoreWithReference(base, adapter, settings, config, batch, adapterScale);
  g.output(policy.logprobs, 'logprobs');
  g.output(reference.logprobs, 'ref_logprobs');
  return g.toBytes();
}

export interface LoraScoreRequest {
  base: HostParams;
  adapter: HostParams;
  /** Multiplies the adapter's update (default 1). */
  adapterScale?: number;
  /** Prompt token ids per row, left-padded with padId as the generator does. */
  prompts: readonly (readonly number[])[];
  padId: number;
  responses: readonly (readonly number[])[];
  responseMask: readonly (readonly number[])[];
}

/** Host side of buildLoraScoringGraph: one session, policy and reference log-probs per response token. */
export async function createLoraScorer(
  runtime: Runtime,
  config: GptConfig,
  settings: LoraSettings,
  dtype: ModelDtype = 'float32',
): Promise<{
  score(request: LoraScoreRequest): Promise<{ logprobs: number[][]; refLogprobs: number[][] }>;
  release(): Promise<void>;
}> {
  const bytes = buildLoraScoringGraph(config, settings, dtype);
  const session: Session = await runtime.createSession(bytes, { name: 'lora_score' });
  return {
    async score(request) {
      const [B, N] = [request.responses.length, request.responses[0]?.length ?? 0];
      const prompt = leftPad(request.prompts, request.padId);
      const out = await session.run({
        ...paramFeeds(config, request.base, dtype),
        ...adapterFeeds(config, settings, request.adapter, dtype),
        adapter_scale: hostTensor(dtype, [], [request.adapterScale ?? 1]),
        prompt_ids: prompt.ids,
        prompt_mask: prompt.mask,
        response_ids: int64([B, N], request.responses.flat()),
        response_mask: int64([B, N], request.responseMask.flat()),
      });
      const rows = (t: HostTensor) => {
        const data = t.data as Float32Array | Float64Array;
        return Array.from({ length: B }, (_, b) => Array.from(data.subarray(b * N, (b + 1) * N)));
      };
      return { logprobs: rows(out.logprobs), refLogprobs: rows(out.ref_logprobs) };
    },
    release: () => session.release(),
  };
}
