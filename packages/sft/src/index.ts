// @rlhf/sft: the supervised fine-tuning stage.
export {
  type SftExample,
  type SftInput,
  sftExample,
  sftLossGraph,
  sftPromptResponse,
  sftTensors,
  trainSft,
} from './sft.js';
