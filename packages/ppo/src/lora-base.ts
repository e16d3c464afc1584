// The frozen base of a LoRA policy or critic inside a train step: its weights are shared inputs (fed as they are,
// no gradient, no AdamW state) under a role prefix, and the decoder reads them with the adapter on top. GRPO and
// PPO both train adapters this way; the parameters trained in full beside the adapter (modulesToSave) are the
// adapter's own tensors, so the base leaves them out.
import type { InputSpec, Tensor } from '@rlhf/graph';
import {
  adaptedParams,
  type GptConfig,
  type GptParams,
  type LoraSettings,
  type ParamShape,
  paramShapes,
  savedModuleParams,
} from '@rlhf/model';
import { type HostTensor, weightFeeds, type Weights } from '@rlhf/runtime';

/** The base weights an adapter's train step reads frozen: every parameter but those it trains in full. */
export function frozenBaseShapes(config: GptConfig, settings: LoraSettings): ParamShape[] {
  const saved = new Set(savedModuleParams(config, settings).map((p) => p.name));
  return paramShapes(config).filter((p) => !saved.has(p.name));
}

/** The train step's shared-input specs of the frozen base, named `${prefix}${name}`. */
export function frozenBaseInputs(config: GptConfig, settings: LoraSettings, prefix: string): InputSpec[] {
  return frozenBaseShapes(config, settings).map(({ name, shape }) => ({
    name: prefix + name,
    dtype: 'float32',
    shape,
  }));
}

/** Feeds for frozenBaseInputs (views of the base's arrays, no copies). */
export function frozenBaseFeeds(
  config: GptConfig,
  settings: LoraSettings,
  base: Weights,
  prefix: string,
): Record<string, HostTensor> {
  return weightFeeds(frozenBaseShapes(config, settings), base, 'float32', prefix);
}

/**
 * The params the decoder reads inside the train step: the frozen base from the shared inputs plus the trained
 * adapter (dropout off: the ratio's old log-probs were scored without it, so they must match at the first step).
 */
export function adaptedFromShared(
  config: GptConfig,
  settings: LoraSettings,
  adapter: ReadonlyMap<string, Tensor>,
  shared: Record<string, Tensor>,
  prefix: string,
): GptParams {
  const base: GptParams = new Map(
    frozenBaseShapes(config, settings).map(({ name }) => [name, shared[prefix + name]]),
  );
  return adaptedParams(base, adapter, settings);
}
