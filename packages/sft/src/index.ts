// @rlhf/sft: the supervised fine-tuning stage.
export { type SftExample, type SftInput, sftExample, sftPromptResponse, trainSft } from './sft.js';
