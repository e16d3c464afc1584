// POST /v1/graders/validate and POST /v1/graders/run: a team checks a declarative grader, and grades one response
// against one prompt row, before it starts a run with it. Specs are data: nothing a team sends is executed.
import {
  datasetRowErrors,
  FIELD_NAME,
  type FieldError,
  type GraderSpec,
  type PromptRow,
} from '@rlhf/contracts';
import { createGrader, GraderError, graderErrors, referencedFields, rowFieldErrors } from '@rlhf/graders';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { teamOf } from '../auth.js';
import { ApiError, invalidRequest } from '../errors.js';
import { Errors } from '../schemas.js';
import type { Services } from '../services.js';

/** Longest response /graders/run grades: far above any generation, small enough to keep the API responsive. */
export const MAX_RUN_RESPONSE_CHARS = 65_536;

const closed = { additionalProperties: false } as const;
const GraderField = Type.Unknown({
  description:
    'a grader spec: { type: string_check | regex | text_similarity | json | numeric | length | reward_model | multi, ... } (see apps/api/README.md)',
});

const ValidateBody = Type.Object(
  {
    grader: GraderField,
    fields: Type.Optional(
      Type.Array(Type.String({ pattern: FIELD_NAME, maxLength: 64 }), {
        maxItems: 64,
        description: "the prompt rows' reference fields: references to any other field are errors",
      }),
    ),
    rewardModel: Type.Optional(
      Type.Boolean({
        description: 'whether the run will have a reward model (false: reward_model graders are errors)',
      }),
    ),
  },
  closed,
);
const ValidateResponse = Type.Object(
  {
    ok: Type.Literal(true),
    referencedFields: Type.Array(Type.String(), { description: 'the prompt-row fields the grader reads' }),
  },
  closed,
);
const RunBody = Type.Object(
  {
    grader: GraderField,
    row: Type.Unknown({ description: 'a prompt row: { prompt, ...fields } or { messages, ...fields }' }),
    response: Type.String({ maxLength: MAX_RUN_RESPONSE_CHARS, description: 'the response to grade' }),
  },
  closed,
);
const RunResponse = Type.Object(
  {
    score: Type.Number(),
    parts: Type.Record(Type.String(), Type.Number(), {
      description: "each named grader's score (a multi's children)",
    }),
  },
  closed,
);

const under = (base: string, errors: FieldError[]): FieldError[] =>
  errors.map((e) => ({ path: `${base}${e.path}`, message: e.message }));

const usesRewardModel = (spec: GraderSpec): boolean =>
  spec.type === 'reward_model' || (spec.type === 'multi' && spec.graders.some(usesRewardModel));

export const graderRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app) => {
  app.post(
    '/graders/validate',
    {
      schema: {
        tags: ['graders'],
        summary: 'Validate a grader spec (shape, safe regexes, JSON Schemas, references)',
        description:
          '200 `{ ok: true, referencedFields }`, or 400 naming every bad field as a JSON Pointer under /grader. With `fields`, references to fields the prompt rows lack are errors; with `rewardModel: false`, reward_model graders are.',
        body: ValidateBody,
        response: { 200: ValidateResponse, ...Errors },
      },
    },
    async (request) => {
      teamOf(request);
      const { grader, fields, rewardModel } = request.body;
      const errors = graderErrors(grader, {
        ...(fields ? { fields } : {}),
        ...(rewardModel === undefined ? {} : { rewardModel }),
      });
      if (errors.length > 0) throw invalidRequest(under('/grader', errors));
      return { ok: true as const, referencedFields: referencedFields(grader as GraderSpec) };
    },
  );

  app.post(
    '/graders/run',
    {
      schema: {
        tags: ['graders'],
        summary: 'Grade one response against one prompt row',
        description:
          '200 `{ score, parts }`. reward_model graders cannot be run here (they need a run’s trained reward model); length graders count chars or words here (no tokenizer).',
        body: RunBody,
        response: { 200: RunResponse, ...Errors },
      },
    },
    async (request) => {
      teamOf(request);
      const { grader, row, response } = request.body;
      const specErrors = graderErrors(grader, { tokenizer: false });
      if (specErrors.length > 0) throw invalidRequest(under('/grader', specErrors));
      const spec = grader as GraderSpec;
      if (usesRewardModel(spec))
        throw new ApiError(
          400,
          'invalid_request',
          'reward_model graders cannot be run here: they score with a run’s trained reward model (test the other graders of a multi on their own)',
          '/grader',
        );
      const rowErrors = datasetRowErrors('prompt', row);
      if (rowErrors.length > 0) throw invalidRequest(under('/row', rowErrors));
      const missing = rowFieldErrors(spec, [row as PromptRow]).map((e) => ({
        path: `/row${e.path.replace(/^\/0/, '')}`,
        message: e.message.replace(/^row 1 /, 'the row ').replace(/^row 1: /, ''),
      }));
      if (missing.length > 0) throw invalidRequest(missing);
      try {
        const { scores, parts } = await createGrader(spec)([row as PromptRow], [response]);
        return {
          score: scores[0],
          parts: Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, v[0]])),
        };
      } catch (error) {
        if (error instanceof GraderError)
          throw new ApiError(400, 'grader_failed', error.message, `/grader${error.path}`);
        throw error;
      }
    },
  );
};
