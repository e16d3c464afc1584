// The independent float64 reference forwards and the tiny HF checkpoints they are checked on, for other packages'
// tests (e.g. @rlhf/sft's reference SFT step): `@rlhf/model/testing/reference`.
export { type ReferenceForward, referenceGptForward } from './reference-gpt.js';
export { referenceLlamaForward } from './reference-llama.js';
export {
  type HfConfig,
  hfLlamaShapes,
  hfLlamaWeights,
  llamaGqaLlama3,
  qwen2Biases,
  qwen3QkNorm,
} from './tiny-llama.js';
