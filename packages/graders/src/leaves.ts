// The scoring rule of each leaf grader type, for one (row, response); patterns and schemas are compiled once.
import type {
  JsonGraderSpec,
  PromptFieldValue,
  LeafGraderSpec,
  LengthGraderSpec,
  NumericGraderSpec,
  PromptRow,
  StringCheckGraderSpec,
} from '@rlhf/contracts';
import { compileJsonSchema } from './json-schema.js';
import { extractNumber, parseNumber, withinTolerance } from './numbers.js';
import { ReferenceFieldError, referenceValue, renderReference } from './references.js';
import { compileLinearRegex } from './regex/engine.js';
import { bleu, editSimilarity, rougeL, tokenF1 } from './similarity.js';

/** Scores one response to one row. */
export type SampleScore = (row: PromptRow, response: string) => number;

/** What scoring may need from the caller. */
export interface LeafDeps {
  countTokens?: (text: string) => number;
}

/** string_check: eq / ne compare exactly; like = contains; ilike = contains after lowercasing both. */
export function stringCheck(
  operation: StringCheckGraderSpec['operation'],
  response: string,
  reference: string,
): number {
  switch (operation) {
    case 'eq':
      return response === reference ? 1 : 0;
    case 'ne':
      return response !== reference ? 1 : 0;
    case 'like':
      return response.includes(reference) ? 1 : 0;
    case 'ilike':
      return response.toLowerCase().includes(reference.toLowerCase()) ? 1 : 0;
  }
}

const SIMILARITY = { edit_distance: editSimilarity, token_f1: tokenF1, bleu, rouge_l: rougeL } as const;

/** Code points of a text. */
export function codePointCount(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** Whitespace-separated words of a text. */
export function wordCount(text: string): number {
  return text.split(/\s+/u).filter((w) => w.length > 0).length;
}

/** length: 1 inside [min, max], minus penaltyPerUnit per unit outside, clamped at 0. */
export function lengthScore(
  length: number,
  spec: Pick<LengthGraderSpec, 'min' | 'max' | 'penaltyPerUnit'>,
): number {
  const below = spec.min !== undefined && length < spec.min ? spec.min - length : 0;
  const above = spec.max !== undefined && length > spec.max ? length - spec.max : 0;
  return Math.max(0, 1 - spec.penaltyPerUnit * (below + above));
}

/** The value at a JSON Pointer (RFC 6901) in a parsed document, or undefined when there is none. */
export function atPointer(document: unknown, path: string): unknown {
  if (path === '') return document;
  let node: unknown = document;
  for (const raw of path.slice(1).split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(node)) {
      if (!/^(0|[1-9]\d*)$/.test(key)) return undefined;
      node = node[Number(key)];
    } else if (typeof node === 'object' && node !== null && Object.hasOwn(node, key)) {
      node = (node as Record<string, unknown>)[key];
    } else return undefined;
  }
  return node;
}

/** Structural equality of JSON values (object key order does not matter). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  const [ka, kb] = [Object.keys(a), Object.keys(b)];
  return (
    ka.length === kb.length &&
    ka.every(
      (k) =>
        Object.hasOwn(b, k) &&
        jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    )
  );
}

// A recursive schema ($ref: '#') on a document nested deeper than the stack fails the check instead of the run.
function schemaHolds(validate: (document: unknown) => boolean, document: unknown): boolean {
  try {
    return validate(document);
  } catch (error) {
    if (error instanceof RangeError) return false;
    throw error;
  }
}

function jsonScorer(spec: JsonGraderSpec): SampleScore {
  const validate = spec.schema === undefined ? null : compileJsonSchema(spec.schema);
  const fields = Object.entries(spec.fields ?? {});
  return (row, response) => {
    let document: unknown;
    try {
      document = JSON.parse(response);
    } catch {
      return 0;
    }
    const checks = (validate ? 1 : 0) + fields.length;
    if (checks === 0) return 1;
    let passed = validate && schemaHolds(validate, document) ? 1 : 0;
    for (const [path, expected] of fields) {
      const wanted =
        typeof expected === 'string' ? referenceValue(expected, row) : (expected as PromptFieldValue);
      if (jsonEqual(atPointer(document, path), wanted)) passed++;
    }
    return passed / checks;
  };
}

function numericScorer(spec: NumericGraderSpec): SampleScore {
  const { absolute = 0, relative = 0 } = spec.tolerance ?? {};
  return (row, response) => {
    const reference =
      typeof spec.reference === 'number' ? spec.reference : parseNumber(renderReference(spec.reference, row));
    if (reference === null)
      throw new ReferenceFieldError(
        `the reference ${JSON.stringify(spec.reference)} is not a number for this row`,
      );
    const x = extractNumber(response, spec.extract ?? 'last');
    return x !== null && withinTolerance(x, reference, absolute, relative) ? 1 : 0;
  };
}

function lengthScorer(spec: LengthGraderSpec, deps: LeafDeps): SampleScore {
  const unit = spec.unit ?? 'chars';
  const count = unit === 'chars' ? codePointCount : unit === 'words' ? wordCount : deps.countTokens;
  if (!count)
    throw new TypeError('a length grader in unit "tokens" needs countTokens (the policy tokenizer)');
  return (_row, response) => lengthScore(count(response), spec);
}

/** The per-sample scorer of a leaf grader (all but reward_model, which scores a whole batch). */
export function leafScorer(
  spec: Exclude<LeafGraderSpec, { type: 'reward_model' }>,
  deps: LeafDeps,
): SampleScore {
  switch (spec.type) {
    case 'string_check':
      return (row, response) => stringCheck(spec.operation, response, renderReference(spec.reference, row));
    case 'regex': {
      const regex = compileLinearRegex(spec.pattern, spec.flags ?? '');
      return spec.mode === 'full_match'
        ? (_row, response) => (regex.fullMatch(response) ? 1 : 0)
        : (_row, response) => (regex.test(response) ? 1 : 0);
    }
    case 'text_similarity': {
      const metric = SIMILARITY[spec.metric];
      return (row, response) => metric(response, renderReference(spec.reference, row));
    }
    case 'json':
      return jsonScorer(spec);
    case 'numeric':
      return numericScorer(spec);
    case 'length':
      return lengthScorer(spec, deps);
  }
}
