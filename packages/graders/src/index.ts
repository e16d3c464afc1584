// @rlhf/graders: declarative graders (validated specs, no user code) as batch rewards for sampling stages.
export {
  combineScores,
  createGrader,
  type GraderDeps,
  GraderError,
  type GraderFunction,
  type RewardModelScorer,
} from './create.js';
export { compileJsonSchema, JsonSchemaError } from './json-schema.js';
export { atPointer, codePointCount, jsonEqual, lengthScore, stringCheck, wordCount } from './leaves.js';
export { extractNumber, parseNumber, withinTolerance } from './numbers.js';
export {
  MissingFieldError,
  ReferenceFieldError,
  referenceValue,
  renderReference,
  templateFields,
} from './references.js';
export {
  compileLinearRegex,
  type LinearRegex,
  MAX_MATCH_WORK,
  MAX_PROGRAM_STEPS,
  RegexWorkLimitError,
} from './regex/engine.js';
export { MAX_REPEAT_COUNT, RegexSyntaxError } from './regex/parse.js';
export { bleu, editSimilarity, lcsLength, levenshtein, rougeL, tokenF1, words } from './similarity.js';
export {
  assertGrader,
  type GraderContext,
  graderErrors,
  MAX_ROW_ERRORS,
  referencedFields,
  rowFieldErrors,
} from './validate.js';
