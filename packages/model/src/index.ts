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
  type CheckpointFiles,
  checkpointFiles,
  checkpointFromFiles,
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
export { exportPolicyOnnx, exportRewardOnnx } from './export.js';
export { type HostParams, leftPad, type ModelDtype, paramFeeds, toRows } from './feeds.js';
export {
  buildGenerationGraph,
  createGenerator,
  effectiveTemperature,
  type GenerateRequest,
  type GenerateResult,
  type GenerationGraphOptions,
  type GenerationInputs,
  type GenerationOutputs,
  type Generator,
  generateTokens,
  type SamplingInputs,
  sampleTokens,
} from './generate.js';
export {
  type GptForwardOptions,
  type GptHidden,
  type GptOutput,
  type GptParams,
  gptForward,
  gptHidden,
  gptParamInputs,
  type KvCache,
  kvShape,
  lmHead,
  lmHeadWeight,
  scalarHead,
} from './gpt.js';
export {
  buildScoringGraph,
  createScorer,
  entropyOf,
  lastTokenIndex,
  logProbs,
  type ResponseBatch,
  responseColumns,
  responseEntropy,
  responseLogprobs,
  responseValues,
  type ScoreOptions,
  type ScoreOutputName,
  type ScoreOutputs,
  type Scorer,
  type ScoreRequest,
  type ScoreResult,
  type ScoringGraphOptions,
  scoreResponses,
  sequenceOf,
  sequenceScores,
  tokenEntropy,
  tokenLogprobs,
  withTemperature,
} from './score.js';
export { logSoftmaxRow, sharpParams } from './testing/sharp-params.js';
