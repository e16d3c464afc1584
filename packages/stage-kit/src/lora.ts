// A LoRA adapter (Hu et al. 2022) in the supervised loop, for any stage: the base is a frozen shared input of the
// train step (no gradient, no AdamW state) and only the adapter (and its modulesToSave) trains; checkpoints are
// PEFT adapter files plus the adapter's optimizer moments; the stage ends with the adapter and the merged model.
import type { InputSpec, Tensor } from '@rlhf/graph';
import {
  adaptedParams,
  adapterSize,
  countParams,
  type GptConfig,
  type GptParams,
  initLora,
  type LoraSettings,
  loraParamShapes,
  mergeLora,
  type ParamShape,
  paramShapes,
  peftAdapterFiles,
  peftAdapterFromFiles,
  savedModuleParams,
} from '@rlhf/model';
import { weightFeeds, type Weights } from '@rlhf/runtime';
import type { StageAdapter } from './hooks.js';
import type { ModelWeights } from './files.js';
import type { SupervisedLoop } from './loop.js';

/** Shared-input name of a frozen base weight (the adapter's saved modules keep the plain names). */
export const loraBaseInput = (name: string) => `base.${name}`;

/** The base weights a train step reads frozen: every parameter except those the adapter trains in full. */
export function frozenLoraShapes(config: GptConfig, settings: LoraSettings): ParamShape[] {
  const saved = new Set(savedModuleParams(config, settings).map((p) => p.name));
  return paramShapes(config).filter((p) => !saved.has(p.name));
}

/** The train step's shared inputs: the frozen base, named loraBaseInput(name). */
export function loraSharedInputs(config: GptConfig, settings: LoraSettings): InputSpec[] {
  return frozenLoraShapes(config, settings).map(({ name, shape }) => ({
    name: loraBaseInput(name),
    dtype: 'float32',
    shape,
  }));
}

/** Inside the loss: the params the decoder reads, the frozen base from `shared` with the adapter on top. */
export function loraTrainParams(
  config: GptConfig,
  settings: LoraSettings,
  adapter: ReadonlyMap<string, Tensor>,
  shared: Record<string, Tensor>,
  options: { dropout?: boolean } = {},
): GptParams {
  const base: GptParams = new Map(
    frozenLoraShapes(config, settings).map(({ name }) => [name, shared[loraBaseInput(name)]]),
  );
  return adaptedParams(base, adapter, settings, options);
}

/** The supervised loop's `adapter` option: what trains, where it starts, the frozen feeds, the checkpoint files. */
export function loraLoopAdapter(
  stage: string,
  model: ModelWeights,
  settings: LoraSettings,
  options: { seed: number; initial?: Weights; baseModel?: string | null },
): NonNullable<SupervisedLoop['adapter']> {
  const { config } = model;
  const initial = options.initial ?? initLora(config, settings, model.params, options.seed);
  return {
    params: loraParamShapes(config, settings),
    initial,
    shared: weightFeeds(frozenLoraShapes(config, settings), model.params, 'float32', loraBaseInput('')),
    files: (params) => peftAdapterFiles(config, settings, params, options.baseModel ?? null),
    fromFiles(files) {
      const loaded = peftAdapterFromFiles(config, files);
      if (JSON.stringify(loaded.settings) !== JSON.stringify(settings))
        throw new Error(
          `${stage}: the checkpoint's adapter ${JSON.stringify(loaded.settings)} is not this config's lora ${JSON.stringify(settings)}`,
        );
      return loaded.adapter;
    },
  };
}

/** What a LoRA stage records with its hyperparameters: the settings and how small the trained part is. */
export function loraSummary(config: GptConfig, settings: LoraSettings) {
  return { ...settings, trainableParams: adapterSize(config, settings), baseParams: countParams(config) };
}

/** A LoRA stage's adapter as it leaves the stage (the merged model beside it is mergeLora's). */
export function stageAdapter(
  config: GptConfig,
  settings: LoraSettings,
  params: Weights,
  baseModel: string | null,
): StageAdapter {
  return { settings, params, files: peftAdapterFiles(config, settings, params, baseModel), baseModel };
}

/** The merged model (base + s·BA, saved modules replaced) of an adapter's weights on `base`. */
export function mergedModel(base: ModelWeights, settings: LoraSettings, adapter: ModelWeights): ModelWeights {
  return {
    ...adapter,
    config: base.config,
    params: mergeLora(base.config, settings, base.params, adapter.params),
  };
}
