// What RAFT fine-tunes: the whole policy, or a LoRA adapter (Hu et al. 2022) on the frozen start policy. With an
// adapter the start policy's weights are fed once per call as shared inputs (no gradient, no AdamW state), the
// sampler runs base + adapter unmerged, checkpoints hold the adapter's PEFT files, and the KL reference is the
// start policy itself, the base the adapter sits on (no second copy of the model).
import type { TrainStepSpec } from '@rlhf/graph';
import {
  createGenerator,
  type Generator,
  initLora,
  type LoraSettings,
  loraParamShapes,
  paramShapes,
} from '@rlhf/model';
import { type HostTensor, type Runtime, weightFeeds, type Weights } from '@rlhf/runtime';
import { loraSftLossGraph, sftLossGraph } from '@rlhf/sft';
import {
  type CheckpointFiles,
  frozenLoraShapes,
  loraBaseInput,
  loraLoopAdapter,
  type ModelWeights,
  mergedModel,
  modelFiles,
  modelFromFiles,
  type StageAdapter,
  stageAdapter,
} from '@rlhf/stage-kit';

export interface RaftTuning {
  /** The train step's parameters and loss (SFT's cross-entropy on the kept responses). */
  params: TrainStepSpec['params'];
  graph: Pick<TrainStepSpec, 'batch' | 'loss' | 'shared'>;
  /** The frozen feeds of every train call (the base with an adapter; none otherwise). */
  shared: Record<string, HostTensor>;
  /** The trained tensors to start from: a checkpoint's, or fresh. */
  initial(resume?: CheckpointFiles): Promise<Weights>;
  /** A sampler whose requests carry the trained tensors as `params`. */
  generator(runtime: Runtime): Promise<Generator>;
  /** The policy the trained tensors make (with an adapter: the merged model). */
  model(trained: Weights): ModelWeights;
  files(trained: Weights): Promise<CheckpointFiles>;
  adapter(trained: Weights): StageAdapter | undefined;
}

/** Full fine-tuning: the trained tensors are the policy's parameters. */
export function fullTuning(start: ModelWeights, batchSize: number): RaftTuning {
  const { config } = start;
  return {
    params: paramShapes(config),
    graph: sftLossGraph(config, batchSize),
    shared: {},
    initial: async (resume) => (resume ? (await modelFromFiles(resume)).params : start.params),
    generator: (runtime) => createGenerator(runtime, config),
    model: (trained) => ({ ...start, params: trained }),
    files: (trained) => modelFiles({ ...start, params: trained }, { stage: 'raft' }),
    adapter: () => undefined,
  };
}

/** A LoRA adapter on the frozen start policy. */
export function loraTuning(
  start: ModelWeights,
  settings: LoraSettings,
  options: { batchSize: number; seed: number; baseModel: string | null },
): RaftTuning {
  const { config } = start;
  const checkpoint = loraLoopAdapter('raft', start, settings, {
    seed: options.seed,
    baseModel: options.baseModel,
  });
  return {
    params: loraParamShapes(config, settings),
    graph: loraSftLossGraph(config, settings, options.batchSize),
    shared: weightFeeds(frozenLoraShapes(config, settings), start.params, 'float32', loraBaseInput('')),
    initial: async (resume) =>
      resume ? checkpoint.fromFiles(resume) : initLora(config, settings, start.params, options.seed),
    async generator(runtime) {
      const generator = await createGenerator(runtime, config, { lora: settings });
      return {
        generate: (request) =>
          generator.generate({ ...request, params: start.params, adapter: request.params }),
        release: () => generator.release(),
      };
    },
    model: (trained) => mergedModel(start, settings, { ...start, params: trained }),
    files: async (trained) => checkpoint.files(trained),
    adapter: (trained) => stageAdapter(config, settings, trained, options.baseModel),
  };
}
