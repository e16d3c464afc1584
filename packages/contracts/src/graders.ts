// Declarative graders: rewards a team declares as data (no user code runs on the server). The schemas here
// check the shape; @rlhf/graders adds the semantic checks (safe regexes, JSON Schemas, reference fields)
// and scores responses. A reference is literal text with `{{item.<field>}}` templates naming fields of
// the prompt row, e.g. `{{item.answer}}` or `The answer is {{item.answer}}.`
import Type, { type Static, type TSchema } from 'typebox';
import { type FieldError, pointer, schemaErrors } from './errors.js';

/** Most graders in one spec (every node of a multi tree counts). */
export const MAX_GRADERS = 16;
/** Most levels of multi graders: a multi inside a multi inside a multi. */
export const MAX_GRADER_DEPTH = 3;
export const MAX_PATTERN_CHARS = 512;
export const MAX_REFERENCE_CHARS = 4096;
/** Characters of a json grader's JSON Schema (as JSON text). */
export const MAX_JSON_SCHEMA_CHARS = 16_384;
export const MAX_JSON_FIELD_CHECKS = 32;
/** Longest response a grader scores (characters, UTF-16 units): longer ones are refused, never cut. */
export const MAX_RESPONSE_CHARS = 1_048_576;
/** Names of graders (metric names `grader/<name>`): no `/`, so nested names join unambiguously. */
export const GRADER_NAME = '^[a-z0-9][a-z0-9_-]*$';
/** Field names of prompt rows that templates may reference. */
export const FIELD_NAME = '^[A-Za-z_][A-Za-z0-9_]*$';

const closed = { additionalProperties: false } as const;
const NO_NUL = '^[^\\u0000]*$';

const name = Type.Optional(
  Type.String({
    pattern: GRADER_NAME,
    maxLength: 64,
    description: 'names the grader in metrics (grader/<name>); default: its type; unique within a multi',
  }),
);
/** Literal text, or text with `{{item.<field>}}` templates naming fields of the prompt row. */
export const GraderReference = Type.String({
  maxLength: MAX_REFERENCE_CHARS,
  pattern: NO_NUL,
  description: 'literal text, or text with {{item.<field>}} templates naming fields of the prompt row',
});

export const StringCheckGrader = Type.Object(
  {
    type: Type.Literal('string_check'),
    name,
    operation: Type.Enum(['eq', 'ne', 'like', 'ilike'], {
      description: 'eq / ne: equal / not equal; like: contains; ilike: contains, ignoring case',
    }),
    reference: GraderReference,
  },
  { ...closed, description: 'score 1 when the response passes the check, else 0' },
);

export const RegexGrader = Type.Object(
  {
    type: Type.Literal('regex'),
    name,
    pattern: Type.String({
      minLength: 1,
      maxLength: MAX_PATTERN_CHARS,
      pattern: NO_NUL,
      description:
        'JavaScript regex syntax (u mode) without backreferences or lookaround, matched in linear time',
    }),
    flags: Type.Optional(
      Type.String({ pattern: '^[imsu]*$', maxLength: 4, description: 'any of i, m, s, u (u is implied)' }),
    ),
    mode: Type.Enum(['match', 'full_match'], {
      description: 'match: somewhere in the response; full_match: the whole response',
    }),
  },
  { ...closed, description: 'score 1 when the pattern matches, else 0' },
);

export const TextSimilarityGrader = Type.Object(
  {
    type: Type.Literal('text_similarity'),
    name,
    metric: Type.Enum(['edit_distance', 'token_f1', 'bleu', 'rouge_l'], {
      description:
        'edit_distance: 1 − Levenshtein/max length; token_f1: SQuAD F1; bleu: sentence BLEU-4 (add-one smoothing for n ≥ 2); rouge_l: LCS F-measure',
    }),
    reference: GraderReference,
  },
  { ...closed, description: 'similarity to the reference, in [0, 1]' },
);

export const JsonGrader = Type.Object(
  {
    type: Type.Literal('json'),
    name,
    schema: Type.Optional(
      Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Boolean()], {
        description: 'a JSON Schema (draft 7 / 2019-09 keywords, checked with Ajv) the response must match',
      }),
    ),
    fields: Type.Optional(
      Type.Record(Type.String({ pattern: '^(/([^~]|~[01])*)*$', maxLength: 256 }), Type.Unknown(), {
        description:
          'JSON Pointer into the response → expected JSON value; a string is a reference ({{item.x}} alone keeps the field’s JSON value)',
      }),
    ),
  },
  {
    ...closed,
    description:
      'the response must parse as JSON (else 0); score = the fraction of the checks (schema, each field) passed, 1 with none',
  },
);

export const NumericGrader = Type.Object(
  {
    type: Type.Literal('numeric'),
    name,
    reference: Type.Union([Type.Number(), GraderReference], {
      description: 'a number, or a reference whose text is a number',
    }),
    extract: Type.Optional(
      Type.Enum(['first', 'last'], { description: 'which number of the response counts (default last)' }),
    ),
    tolerance: Type.Optional(
      Type.Object(
        {
          absolute: Type.Optional(Type.Number({ minimum: 0 })),
          relative: Type.Optional(Type.Number({ minimum: 0 })),
        },
        { ...closed, description: 'passes when |x − ref| ≤ max(absolute, relative·|ref|) (default exact)' },
      ),
    ),
  },
  {
    ...closed,
    description: 'score 1 when the extracted number is within tolerance of the reference, else 0',
  },
);

export const LengthGrader = Type.Object(
  {
    type: Type.Literal('length'),
    name,
    min: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_RESPONSE_CHARS })),
    max: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_RESPONSE_CHARS })),
    unit: Type.Optional(
      Type.Enum(['chars', 'words', 'tokens'], {
        description:
          'chars: code points; words: whitespace-separated; tokens: the policy tokenizer (default chars)',
      }),
    ),
    penaltyPerUnit: Type.Number({
      minimum: 0,
      maximum: 1,
      description: 'subtracted per unit outside [min, max]',
    }),
  },
  { ...closed, description: '1 inside [min, max], minus penaltyPerUnit per unit outside, clamped at 0' },
);

export const RewardModelGrader = Type.Object(
  { type: Type.Literal('reward_model'), name },
  { ...closed, description: "the run's reward model scores the response (its raw score)" },
);

const MultiFields = (children: TSchema) =>
  Type.Object(
    {
      type: Type.Literal('multi'),
      name,
      graders: Type.Array(children, { minItems: 1, maxItems: MAX_GRADERS }),
      combine: Type.Enum(['weighted_sum', 'min', 'product'], {
        description: 'weighted_sum: Σ weight·score (not normalised); min; product',
      }),
      weights: Type.Optional(
        Type.Record(Type.String({ pattern: GRADER_NAME }), Type.Number({ minimum: -1000, maximum: 1000 }), {
          description: 'per child name (default 1); weighted_sum only',
        }),
      ),
    },
    { ...closed, description: 'combines the scores of its graders' },
  );

const LEAVES = [
  StringCheckGrader,
  RegexGrader,
  TextSimilarityGrader,
  JsonGrader,
  NumericGrader,
  LengthGrader,
  RewardModelGrader,
] as const;

/** The shape of one grader without its children checked (graderSpecErrors recurses into them). */
export const MultiGrader = MultiFields(Type.Object({}, { additionalProperties: true }));

// A plain (non-recursive) JSON Schema for OpenAPI and embedding: multi unrolled MAX_GRADER_DEPTH levels.
function unrolled(depth: number): TSchema {
  return depth === 0
    ? Type.Union([...LEAVES])
    : Type.Union([...LEAVES, MultiFields(unrolled(depth - 1))], { description: 'a grader spec' });
}

export type StringCheckGraderSpec = Static<typeof StringCheckGrader>;
export type RegexGraderSpec = Static<typeof RegexGrader>;
export type TextSimilarityGraderSpec = Static<typeof TextSimilarityGrader>;
export type JsonGraderSpec = Static<typeof JsonGrader>;
export type NumericGraderSpec = Static<typeof NumericGrader>;
export type LengthGraderSpec = Static<typeof LengthGrader>;
export type RewardModelGraderSpec = Static<typeof RewardModelGrader>;
export interface MultiGraderSpec {
  type: 'multi';
  name?: string;
  graders: GraderSpec[];
  combine: 'weighted_sum' | 'min' | 'product';
  weights?: Record<string, number>;
}
export type LeafGraderSpec =
  | StringCheckGraderSpec
  | RegexGraderSpec
  | TextSimilarityGraderSpec
  | JsonGraderSpec
  | NumericGraderSpec
  | LengthGraderSpec
  | RewardModelGraderSpec;
/** A grader spec: a discriminated union on `type`. */
export type GraderSpec = LeafGraderSpec | MultiGraderSpec;
export const GraderSpec = unrolled(MAX_GRADER_DEPTH);

export type GraderType = GraderSpec['type'];
export const GRADER_TYPES: readonly GraderType[] = [
  'string_check',
  'regex',
  'text_similarity',
  'json',
  'numeric',
  'length',
  'reward_model',
  'multi',
];
const SCHEMAS: Record<GraderType, TSchema> = {
  string_check: StringCheckGrader,
  regex: RegexGrader,
  text_similarity: TextSimilarityGrader,
  json: JsonGrader,
  numeric: NumericGrader,
  length: LengthGrader,
  reward_model: RewardModelGrader,
  multi: MultiGrader,
};

/** A grader's name: its `name`, else its type. */
export const graderName = (spec: GraderSpec): string => spec.name ?? spec.type;

/**
 * The shape errors of a grader spec (one per field, JSON Pointers from `base`), recursing into multi
 * graders with the depth and count limits. Semantic checks (regex safety, JSON Schemas, reference
 * fields) are @rlhf/graders' graderErrors, which calls this first.
 */
export function graderSpecErrors(spec: unknown, base = ''): FieldError[] {
  const counter = { graders: 0 };
  return nodeErrors(spec, base, 1, counter);
}

function nodeErrors(spec: unknown, at: string, depth: number, counter: { graders: number }): FieldError[] {
  counter.graders++;
  if (counter.graders === MAX_GRADERS + 1)
    return [{ path: at, message: `too many graders: at most ${MAX_GRADERS} in one spec` }];
  if (counter.graders > MAX_GRADERS) return [];
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec))
    return [{ path: at, message: 'must be an object' }];
  const type = (spec as { type?: unknown }).type;
  if (!GRADER_TYPES.includes(type as GraderType))
    return [
      {
        path: pointer(at, 'type'),
        message: `must be one of ${GRADER_TYPES.map((t) => `"${t}"`).join(', ')}`,
      },
    ];
  const errors = schemaErrors(SCHEMAS[type as GraderType], spec, at);
  if (type !== 'multi' || errors.length > 0) return errors;
  const multi = spec as MultiGraderSpec;
  if (depth > MAX_GRADER_DEPTH)
    return [{ path: at, message: `multi graders nest at most ${MAX_GRADER_DEPTH} levels deep` }];
  const names = new Map<string, number>();
  multi.graders.forEach((child, i) => {
    const path = pointer(pointer(at, 'graders'), i);
    const childErrors = nodeErrors(child, path, depth + 1, counter);
    errors.push(...childErrors);
    if (childErrors.length > 0) return;
    const childName = graderName(child);
    const earlier = names.get(childName);
    if (earlier !== undefined)
      errors.push({
        path: pointer(path, 'name'),
        message: `"${childName}" also names grader ${earlier}: names must be unique within a multi (give each a name)`,
      });
    else names.set(childName, i);
  });
  for (const key of Object.keys(multi.weights ?? {})) {
    if (!names.has(key) && errors.length === 0)
      errors.push({ path: pointer(pointer(at, 'weights'), key), message: 'names no grader of this multi' });
  }
  if (multi.weights && multi.combine !== 'weighted_sum')
    errors.push({ path: pointer(at, 'weights'), message: 'weights apply to combine "weighted_sum" only' });
  return errors;
}
