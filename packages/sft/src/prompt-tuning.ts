// SFT with prompt tuning (Lester et al. 2021): the base is a frozen shared input of the train step, as with LoRA,
// and the one trainable tensor is prompt_embeddings [P, d], the virtual tokens in front of every input. The loss
// covers the real tokens only (the decoder returns their hidden states alone). Checkpoints and the stage's output
// are PEFT PROMPT_TUNING files; nothing merges into the base, so the stage's model is the base unchanged.
import type { InputSpec, TrainStepSpec } from '@rlhf/graph';
import {
  type GptConfig,
  type GptParams,
  initPromptTuning,
  PROMPT_EMBEDDINGS,
  type PromptTuningSettings,
  paramShapes,
  promptTuningFiles,
  promptTuningFromFiles,
  promptTuningParamShapes,
} from '@rlhf/model';
import { float32, type HostTensor, weightFeeds, type Weights } from '@rlhf/runtime';
import { loraBaseInput, type ModelWeights, type SupervisedLoop } from '@rlhf/stage-kit';
import { sftBatch, sftLoss, type TrainForward } from './loss.js';

/** A prompt-tuning stage's adapter: its settings, prompt_embeddings, PEFT files and the base it applies to. */
export interface SftPromptAdapter {
  settings: PromptTuningSettings;
  params: Weights;
  /** adapter_config.json (peft_type PROMPT_TUNING) + adapter_model.safetensors (`prompt_embeddings`). */
  files: Record<string, Uint8Array>;
  baseModel: string | null;
}

/** The frozen base as shared inputs of the train step (every parameter: prompt tuning trains none of them). */
const sharedBase = (config: GptConfig): InputSpec[] =>
  paramShapes(config).map(({ name, shape }) => ({ name: loraBaseInput(name), dtype: 'float32', shape }));

/** The SFT loss with virtual tokens in front: params are prompt_embeddings, the base comes in as shared. */
export function promptTuningSftLossGraph(
  config: GptConfig,
  B: number,
  forward: TrainForward = {},
): Pick<TrainStepSpec, 'batch' | 'loss' | 'shared'> {
  return {
    batch: sftBatch(B),
    shared: sharedBase(config),
    loss: (adapter, batch, shared) => {
      const params: GptParams = new Map(
        paramShapes(config).map(({ name }) => [name, shared[loraBaseInput(name)]]),
      );
      const prompt = adapter.get(PROMPT_EMBEDDINGS);
      if (!prompt) throw new Error(`prompt tuning: the train step has no ${PROMPT_EMBEDDINGS}`);
      params.set(PROMPT_EMBEDDINGS, prompt);
      return sftLoss(config, params, batch, forward);
    },
  };
}

/** The supervised loop's `adapter` option: prompt_embeddings trains (SAMPLE_VOCAB init), the base is shared. */
export function promptTuningLoopAdapter(
  model: ModelWeights,
  settings: PromptTuningSettings,
  options: { seed: number; baseModel?: string | null },
): NonNullable<SupervisedLoop['adapter']> {
  const { config } = model;
  return {
    params: promptTuningParamShapes(config, settings),
    initial: initPromptTuning(config, settings, model.params, options.seed),
    shared: weightFeeds(paramShapes(config), model.params, 'float32', loraBaseInput('')),
    files: (params) => promptTuningFiles(config, settings, params, options.baseModel ?? null),
    fromFiles(files) {
      const loaded = promptTuningFromFiles(config, files);
      if (loaded.settings.numVirtualTokens !== settings.numVirtualTokens)
        throw new Error(
          `sft: the checkpoint's prompt has ${loaded.settings.numVirtualTokens} virtual tokens, the config ${settings.numVirtualTokens}`,
        );
      return loaded.adapter;
    },
  };
}

/** Feeds of the eval graph's `prompt_embeddings` input. */
export function promptFeeds(config: GptConfig, params: Weights): Record<string, HostTensor> {
  const data = params.get(PROMPT_EMBEDDINGS) as Float32Array;
  return { [PROMPT_EMBEDDINGS]: float32([data.length / config.nEmbd, config.nEmbd], data) };
}
