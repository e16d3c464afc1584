export {
  type ChatMessage,
  type ChatRole,
  ChatTemplateError,
  chatPrompt,
  chatPromptResponse,
  validateMessages,
} from './chat.js';
export {
  countParams,
  type GptConfig,
  GptConfigError,
  initParams,
  type ParamShape,
  type PresetName,
  paramShapes,
  presetConfig,
  presets,
  shapeSize,
  validateConfig,
} from './config.js';
export {
  type CheckpointExtra,
  gptConfigFromHf,
  gptConfigToHf,
  type LoadedCheckpoint,
  loadCheckpoint,
  loadHfGpt2,
  saveCheckpoint,
} from './hf.js';
export { createRng, hashString, type Rng, xoshiro128StarStar } from './random.js';
export {
  bf16ToF32,
  CheckpointError,
  type Dtype,
  f16ToF32,
  f32ToF16,
  readSafetensors,
  type SafeTensor,
  tensorToFloat32,
  writeSafetensors,
} from './safetensors.js';
export { geluTanh, type ReferenceForward, referenceGptForward } from './testing/reference-gpt.js';
export {
  byteLevelAlphabet,
  type HfTensorOptions,
  hfGpt2ConfigJson,
  hfGpt2Tensors,
  tinyGpt2TokenizerJson,
  writeHfGpt2Dir,
} from './testing/tiny-hf.js';
export { ByteTokenizer, type DecodeOptions, loadHfTokenizer, type Tokenizer } from './tokenizer.js';
