// The SFT loss the full, LoRA and prompt-tuning train steps share: they differ only in where the params come from.
import { crossEntropy, type InputSpec, type Tensor, type TrainStepSpec } from '@rlhf/graph';
import { type GptConfig, type GptForwardOptions, type GptParams, gptForward } from '@rlhf/model';

/** How the train step runs the forward: `recompute` checkpoints every layer (the config's recompute). */
export type TrainForward = Pick<GptForwardOptions, 'recompute'>;

/** The inputs of a batch of B sftTensors rows. */
export const sftBatch = (B: number): InputSpec[] => [
  { name: 'input_ids', dtype: 'int64', shape: [B, 'seq'] },
  { name: 'targets', dtype: 'int64', shape: [B, 'seq'] },
  { name: 'loss_mask', dtype: 'float32', shape: [B, 'seq'] },
];

/** Mean NLL of the model with these params over the batch's loss-mask tokens (TRL's completion-only loss). */
export function sftLoss(
  config: GptConfig,
  params: GptParams,
  batch: Record<string, Tensor>,
  forward: TrainForward = {},
): { loss: Tensor } {
  const { logits } = gptForward(params, config, batch.input_ids, forward);
  return { loss: crossEntropy(logits, batch.targets, batch.loss_mask) };
}

/** The SFT loss of a batch of B sftTensors rows, every parameter trained. */
export function sftLossGraph(
  config: GptConfig,
  B: number,
  forward: TrainForward = {},
): Pick<TrainStepSpec, 'batch' | 'loss'> {
  return { batch: sftBatch(B), loss: (params, batch) => sftLoss(config, params, batch, forward) };
}
