// GRPO with a LoRA policy (Hu et al. 2022): the frozen base is one weight copy for policy and reference. Rollout
// scoring is one graph over the base's weights: the policy's log-probs with the adapter on and the reference's
// from the bare base (the adapter off), so the KL's reference is no second model; the train step reads the base
// as shared inputs `base.<name>`.
import { Graph, type Tensor } from '@rlhf/graph';
import {
  adapterFeeds,
  adapterInputs,
  adaptedParams,
  type GptConfig,
  type GptParams,
  gptParamInputs,
  type HostParams,
  type LoraSettings,
  leftPad,
  paramFeeds,
  type ResponseBatch,
  scoreResponses,
} from '@rlhf/model';
import { adaptedFromShared, frozenBaseInputs } from '@rlhf/ppo';
import { type HostTensor, hostTensor, int64, type Runtime, type Session } from '@rlhf/runtime';

/** Shared-input prefix of the frozen base in the GRPO train step. */
export const BASE_PREFIX = 'base.';

export const baseWeightInputs = (config: GptConfig, settings: LoraSettings) =>
  frozenBaseInputs(config, settings, BASE_PREFIX);

export const loraPolicyParams = (
  config: GptConfig,
  settings: LoraSettings,
  adapter: ReadonlyMap<string, Tensor>,
  shared: Record<string, Tensor>,
): GptParams => adaptedFromShared(config, settings, adapter, shared, BASE_PREFIX);

/**
 * Inputs: the base's parameters (paramShapes names), the adapter's (adapterInput names), `temperature`,
 * prompt_ids / prompt_mask [B, P], response_ids / response_mask [B, N]. Outputs: `logprobs` and `entropy`
 * (adapter on) and, with `reference`, `ref_logprobs` (the bare base) [B, N].
 */
export function buildLoraRolloutScoringGraph(
  config: GptConfig,
  settings: LoraSettings,
  reference: boolean,
): Uint8Array {
  const g = new Graph('grpo_lora_score');
  const base = gptParamInputs(g, config, 'float32');
  const adapter = adapterInputs(g, config, settings, 'float32');
  const temperature = g.input('temperature', 'float32', []);
  const batch: ResponseBatch = {
    promptIds: g.input('prompt_ids', 'int64', ['batch', 'prompt']),
    promptMask: g.input('prompt_mask', 'int64', ['batch', 'prompt']),
    responseIds: g.input('response_ids', 'int64', ['batch', 'response']),
    responseMask: g.input('response_mask', 'int64', ['batch', 'response']),
  };
  const policy = scoreResponses(adaptedParams(base, adapter, settings), config, batch, { temperature });
  g.output(policy.logprobs, 'logprobs');
  g.output(policy.entropy, 'entropy');
  if (reference) g.output(scoreResponses(base, config, batch, { temperature }).logprobs, 'ref_logprobs');
  return g.toBytes();
}

export interface LoraRolloutScoreRequest {
  base: HostParams;
  adapter: HostParams;
  prompts: readonly (readonly number[])[];
  padId: number;
  responses: readonly (readonly number[])[];
  responseMask: readonly (readonly number[])[];
  temperature: number;
}

export interface LoraRolloutScores {
  logprobs: number[][];
  entropy: number[][];
  /** Only from a scorer created with `reference`. */
  refLogprobs?: number[][];
}

export interface LoraRolloutScorer {
  score(request: LoraRolloutScoreRequest): Promise<LoraRolloutScores>;
  release(): Promise<void>;
}

/** One session: policy (base + adapter) and reference (base) scores of a rollout in one run. */
export async function createLoraRolloutScorer(
  runtime: Runtime,
  config: GptConfig,
  settings: LoraSettings,
  options: { reference: boolean },
): Promise<LoraRolloutScorer> {
  const bytes = buildLoraRolloutScoringGraph(config, settings, options.reference);
  const session: Session = await runtime.createSession(bytes, { name: 'grpo_lora_score' });
  return {
    async score(request) {
      const [B, N] = [request.responses.length, request.responses[0]?.length ?? 0];
      const prompt = leftPad(request.prompts, request.padId);
      const out = await session.run({
        ...paramFeeds(config, request.base),
        ...adapterFeeds(config, settings, request.adapter),
        temperature: hostTensor('float32', [], [request.temperature]),
        prompt_ids: prompt.ids,
        prompt_mask: prompt.mask,
        response_ids: int64([B, N], request.responses.flat()),
        response_mask: int64([B, N], request.responseMask.flat()),
      });
      const rows = (t: HostTensor) => {
        const data = t.data as Float32Array;
        return Array.from({ length: B }, (_, b) => Array.from(data.subarray(b * N, (b + 1) * N)));
      };
      return {
        logprobs: rows(out.logprobs),
        entropy: rows(out.entropy),
        ...(options.reference ? { refLogprobs: rows(out.ref_logprobs) } : {}),
      };
    },
    release: () => session.release(),
  };
}
