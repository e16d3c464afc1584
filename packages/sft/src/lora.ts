// SFT with a LoRA adapter (Hu et al. 2022): the base model is a frozen shared input of the train step (no gradient,
// no AdamW state) and only the adapter (and any modulesToSave) trains; checkpoints are PEFT adapter files plus
// the adapter's optimizer moments. The stage ends with the adapter and the merged model (W + s·BA), so later
// stages and /generate take the merged model as they take any other.
import type { TrainStepSpec } from '@rlhf/graph';
import type { GptConfig, LoraSettings } from '@rlhf/model';
import type { Weights } from '@rlhf/runtime';
import {
  type ModelWeights,
  loraLoopAdapter as stageLoraLoopAdapter,
  loraSharedInputs,
  loraTrainParams,
  type SupervisedLoop,
} from '@rlhf/stage-kit';
import { sftBatch, sftLoss, type TrainForward } from './loss.js';

// The LoRA section's reading moved to @rlhf/model (every stage and the API's submission checks share it).
export { defaultTargetModules, loraSettingsOf } from '@rlhf/model';

/** The SFT loss with the adapter on (dropout active): params are the adapter's, the base comes in as shared. */
export function loraSftLossGraph(
  config: GptConfig,
  settings: LoraSettings,
  B: number,
  forward: TrainForward = {},
): Pick<TrainStepSpec, 'batch' | 'loss' | 'shared'> {
  return {
    batch: sftBatch(B),
    shared: loraSharedInputs(config, settings),
    loss: (adapter, batch, shared) =>
      sftLoss(config, loraTrainParams(config, settings, adapter, shared, { dropout: true }), batch, forward),
  };
}

/** The supervised loop's `adapter` option for SFT (@rlhf/stage-kit loraLoopAdapter). */
export const loraLoopAdapter = (
  model: ModelWeights,
  settings: LoraSettings,
  options: { seed: number; initial?: Weights; baseModel?: string | null },
): NonNullable<SupervisedLoop['adapter']> => stageLoraLoopAdapter('sft', model, settings, options);
