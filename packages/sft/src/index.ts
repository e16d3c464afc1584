// @rlhf/sft: the supervised fine-tuning stage.
export {
  type SftAdapter,
  type SftExample,
  type SftInput,
  type SftResult,
  sftExample,
  sftPromptResponse,
  sftTensors,
  trainSft,
} from './sft.js';
export { sftLossGraph } from './loss.js';
export { defaultTargetModules, loraLoopAdapter, loraSettingsOf, loraSftLossGraph } from './lora.js';
export {
  promptTuningLoopAdapter,
  promptTuningSftLossGraph,
  type SftPromptAdapter,
} from './prompt-tuning.js';
