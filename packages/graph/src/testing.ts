// Fixtures for tests and benchmarks (import '@rlhf/graph/testing').
export { type TinyGptConfig, tinyGptLogits, tinyGptLoss, tinyGptParams } from './testing/tiny-gpt.js';
