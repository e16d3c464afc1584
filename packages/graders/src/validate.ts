// Validation of grader specs before anything runs: the shape (contracts), then what only a compiler can tell
// (regexes the linear engine accepts, JSON Schemas Ajv compiles, templates) and what the run provides
// (the dataset's fields, a reward model, the policy's tokenizer). Paths are JSON Pointers into the spec.
import {
  ContractError,
  type FieldError,
  type GraderSpec,
  graderSpecErrors,
  MAX_JSON_FIELD_CHECKS,
  MAX_JSON_SCHEMA_CHARS,
  type PromptRow,
  pointer,
} from '@rlhf/contracts';
import { compileJsonSchema, JsonSchemaError, jsonDepth, MAX_JSON_DEPTH } from './json-schema.js';
import { parseNumber } from './numbers.js';
import { MissingFieldError, renderReference, templateErrors, templateFields } from './references.js';
import { compileLinearRegex } from './regex/engine.js';
import { RegexSyntaxError } from './regex/parse.js';

/** What the grader will run with; an absent key means "not known here" and is not checked. */
export interface GraderContext {
  /** Fields every row of the prompt dataset has (references to others are errors). */
  fields?: readonly string[];
  /** Whether a reward model will score (reward_model graders need one). */
  rewardModel?: boolean;
  /** Whether the policy's tokenizer counts tokens (length graders in unit "tokens" need it). */
  tokenizer?: boolean;
}

/** One reference of a spec: where it is, its text, and whether it must resolve to a number. */
interface ReferenceSite {
  path: string;
  reference: string;
  numeric: boolean;
}

/** Every reference of a (shape-valid) spec, depth first. */
function referenceSites(spec: GraderSpec, at = ''): ReferenceSite[] {
  switch (spec.type) {
    case 'string_check':
    case 'text_similarity':
      return [{ path: pointer(at, 'reference'), reference: spec.reference, numeric: false }];
    case 'numeric':
      return typeof spec.reference === 'string'
        ? [{ path: pointer(at, 'reference'), reference: spec.reference, numeric: true }]
        : [];
    case 'json':
      return Object.entries(spec.fields ?? {}).flatMap(([key, value]) =>
        typeof value === 'string'
          ? [{ path: pointer(pointer(at, 'fields'), key), reference: value, numeric: false }]
          : [],
      );
    case 'multi':
      return spec.graders.flatMap((child, i) => referenceSites(child, pointer(pointer(at, 'graders'), i)));
    default:
      return [];
  }
}

/** The prompt-row fields a spec references, sorted. */
export function referencedFields(spec: GraderSpec): string[] {
  return [...new Set(referenceSites(spec).flatMap((site) => templateFields(site.reference)))].sort();
}

/** Every problem with a grader spec in this context; [] when it can run. */
export function graderErrors(spec: unknown, context: GraderContext = {}): FieldError[] {
  const shape = graderSpecErrors(spec);
  if (shape.length > 0) return shape;
  const valid = spec as GraderSpec;
  const errors = semanticErrors(valid, '', context);
  for (const site of referenceSites(valid)) {
    const templateProblems = templateErrors(site.reference, site.path);
    errors.push(...templateProblems);
    if (templateProblems.length > 0) continue;
    const fields = templateFields(site.reference);
    if (site.numeric && fields.length === 0 && parseNumber(site.reference) === null)
      errors.push({ path: site.path, message: 'must be a number, or a reference whose text is a number' });
    if (!context.fields) continue;
    for (const field of fields)
      if (!context.fields.includes(field))
        errors.push({
          path: site.path,
          message: `references field "${field}", which the prompt rows do not have (they have: ${context.fields.join(', ') || 'no fields'})`,
        });
  }
  return errors;
}

/** Throws ContractError naming every problem; returns the spec typed. */
export function assertGrader(spec: unknown, context: GraderContext = {}): GraderSpec {
  const errors = graderErrors(spec, context);
  if (errors.length > 0) throw new ContractError(errors);
  return spec as GraderSpec;
}

function semanticErrors(spec: GraderSpec, at: string, context: GraderContext): FieldError[] {
  switch (spec.type) {
    case 'regex':
      try {
        compileLinearRegex(spec.pattern, spec.flags ?? '');
        return [];
      } catch (error) {
        if (!(error instanceof RegexSyntaxError)) throw error;
        return [
          {
            path: pointer(
              at,
              spec.flags && error.reason.startsWith('unsupported flag') ? 'flags' : 'pattern',
            ),
            message: error.message,
          },
        ];
      }
    case 'json':
      return jsonErrors(spec, at);
    case 'length': {
      const errors: FieldError[] = [];
      if (spec.min === undefined && spec.max === undefined)
        errors.push({ path: at, message: 'a length grader needs min, max or both' });
      if (spec.min !== undefined && spec.max !== undefined && spec.min > spec.max)
        errors.push({ path: pointer(at, 'max'), message: `must be ≥ min (${spec.min})` });
      if (spec.unit === 'tokens' && context.tokenizer === false)
        errors.push({
          path: pointer(at, 'unit'),
          message: 'counting tokens needs the policy tokenizer, which is not available here',
        });
      return errors;
    }
    case 'reward_model':
      return context.rewardModel === false
        ? [
            {
              path: at,
              message:
                'a reward_model grader needs a reward model, and none is available here (add a reward_model stage or start from a run with one)',
            },
          ]
        : [];
    case 'multi':
      return spec.graders.flatMap((child, i) =>
        semanticErrors(child, pointer(pointer(at, 'graders'), i), context),
      );
    default:
      return [];
  }
}

function jsonErrors(spec: Extract<GraderSpec, { type: 'json' }>, at: string): FieldError[] {
  const errors: FieldError[] = [];
  const fields = Object.entries(spec.fields ?? {});
  if (fields.length > MAX_JSON_FIELD_CHECKS)
    errors.push({ path: pointer(at, 'fields'), message: `at most ${MAX_JSON_FIELD_CHECKS} field checks` });
  for (const [key, value] of fields)
    if (jsonDepth(value) > MAX_JSON_DEPTH)
      errors.push({
        path: pointer(pointer(at, 'fields'), key),
        message: `nests more than ${MAX_JSON_DEPTH} levels`,
      });
  if (spec.schema === undefined) return errors;
  const schemaAt = pointer(at, 'schema');
  // Depth first: JSON.stringify itself overflows the stack on values nested thousands deep.
  if (jsonDepth(spec.schema) > MAX_JSON_DEPTH)
    return [
      ...errors,
      { path: schemaAt, message: `nests more than ${MAX_JSON_DEPTH} levels of objects and arrays` },
    ];
  if (JSON.stringify(spec.schema).length > MAX_JSON_SCHEMA_CHARS)
    return [
      ...errors,
      { path: schemaAt, message: `must take at most ${MAX_JSON_SCHEMA_CHARS} characters as JSON` },
    ];
  try {
    compileJsonSchema(spec.schema);
  } catch (error) {
    if (!(error instanceof JsonSchemaError)) throw error;
    errors.push({ path: schemaAt, message: error.message });
  }
  return errors;
}

/** Most row errors rowFieldErrors reports (a dataset may have many rows with the same problem). */
export const MAX_ROW_ERRORS = 20;

/**
 * The rows a spec cannot grade: a row missing a referenced field, or whose numeric reference is not a
 * number. Paths are `/<row index>/<field>` (0-based); messages name the row's line (1-based) and the reference.
 */
export function rowFieldErrors(spec: GraderSpec, rows: readonly PromptRow[]): FieldError[] {
  const sites = referenceSites(spec);
  const errors: FieldError[] = [];
  for (let i = 0; i < rows.length && errors.length < MAX_ROW_ERRORS; i++) {
    for (const site of sites) {
      const missing = templateFields(site.reference).find((field) => !Object.hasOwn(rows[i], field));
      if (missing !== undefined) {
        errors.push({
          path: pointer(`/${i}`, missing),
          message: `row ${i + 1} has no field "${missing}" (referenced at ${site.path})`,
        });
        continue;
      }
      if (!site.numeric) continue;
      const text = renderOrNull(site.reference, rows[i]);
      if (text !== null && parseNumber(text) === null) {
        const field = templateFields(site.reference)[0] ?? '';
        errors.push({
          path: pointer(`/${i}`, field),
          message: `row ${i + 1}: ${site.path} gives ${JSON.stringify(text.slice(0, 40))}, not a number`,
        });
      }
    }
  }
  return errors.slice(0, MAX_ROW_ERRORS);
}

function renderOrNull(reference: string, row: PromptRow): string | null {
  try {
    return renderReference(reference, row);
  } catch (error) {
    if (error instanceof MissingFieldError) return null;
    throw error;
  }
}
