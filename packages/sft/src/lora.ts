// SFT with a LoRA adapter (Hu et al. 2022): the base model is a frozen shared input of the train step (no gradient,
// no AdamW state) and only the adapter (and any modulesToSave) trains; checkpoints are PEFT adapter files plus
// the adapter's optimizer moments. The stage ends with the adapter and the merged model (W + s·BA), so later
// stages and /generate take the merged model as they take any other.
import { crossEntropy, type Tensor, type TrainStepSpec } from '@rlhf/graph';
import {
  adaptedParams,
  type GptConfig,
  gptForward,
  initLora,
  type LoraSettings,
  loraParamShapes,
  type ParamShape,
  paramShapes,
  peftAdapterFiles,
  peftAdapterFromFiles,
  savedModuleParams,
} from '@rlhf/model';
import { weightFeeds, type Weights } from '@rlhf/runtime';
import type { ModelWeights, SupervisedLoop } from '@rlhf/stage-kit';

// The LoRA section's reading moved to @rlhf/model (every stage and the API's submission checks share it).
export { defaultTargetModules, loraSettingsOf } from '@rlhf/model';

/** Shared-input name of a frozen base weight (the adapter's saved modules keep the plain names). */
const baseInput = (name: string) => `base.${name}`;

/** The base weights the train step reads frozen: every parameter except those the adapter trains in full. */
function frozenShapes(config: GptConfig, settings: LoraSettings): ParamShape[] {
  const saved = new Set(savedModuleParams(config, settings).map((p) => p.name));
  return paramShapes(config).filter((p) => !saved.has(p.name));
}

/** The SFT loss with the adapter on (dropout active): params are the adapter's, the base comes in as shared. */
export function loraSftLossGraph(
  config: GptConfig,
  settings: LoraSettings,
  B: number,
): Pick<TrainStepSpec, 'batch' | 'loss' | 'shared'> {
  const frozen = frozenShapes(config, settings);
  return {
    batch: [
      { name: 'input_ids', dtype: 'int64', shape: [B, 'seq'] },
      { name: 'targets', dtype: 'int64', shape: [B, 'seq'] },
      { name: 'loss_mask', dtype: 'float32', shape: [B, 'seq'] },
    ],
    shared: frozen.map(({ name, shape }) => ({ name: baseInput(name), dtype: 'float32', shape })),
    loss: (adapter: Map<string, Tensor>, batch: Record<string, Tensor>, shared: Record<string, Tensor>) => {
      const base = new Map(frozen.map(({ name }) => [name, shared[baseInput(name)]]));
      const params = adaptedParams(base, adapter, settings, { dropout: true });
      const { logits } = gptForward(params, config, batch.input_ids);
      return { loss: crossEntropy(logits, batch.targets, batch.loss_mask) };
    },
  };
}

/** The supervised loop's `adapter` option: what trains, where it starts, the frozen feeds, the checkpoint files. */
export function loraLoopAdapter(
  model: ModelWeights,
  settings: LoraSettings,
  options: { seed: number; initial?: Weights; baseModel?: string | null },
): NonNullable<SupervisedLoop['adapter']> {
  const { config } = model;
  const initial = options.initial ?? initLora(config, settings, model.params, options.seed);
  return {
    params: loraParamShapes(config, settings),
    initial,
    shared: weightFeeds(frozenShapes(config, settings), model.params, 'float32', baseInput('')),
    files: (params) => peftAdapterFiles(config, settings, params, options.baseModel ?? null),
    fromFiles(files) {
      const loaded = peftAdapterFromFiles(config, files);
      if (JSON.stringify(loaded.settings) !== JSON.stringify(settings))
        throw new Error(
          `sft: the checkpoint's adapter ${JSON.stringify(loaded.settings)} is not this config's lora ${JSON.stringify(settings)}`,
        );
      return loaded.adapter;
    },
  };
}
