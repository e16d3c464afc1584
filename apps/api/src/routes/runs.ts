// Runs: create, list, get, cancel, metrics history, rollout samples, artifacts (list, download) and
// sampling from a finished policy.
import { Artifact, RunSpecInput } from '@rlhf/contracts';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { teamOf } from '../auth.js';
import { ApiError } from '../errors.js';
import type { MetricCursor } from '../run-store.js';
import { pauseRun, resumeRun } from '../pause.js';
import {
  artifactList,
  cancelRun,
  createRun,
  findArtifact,
  findRun,
  metricHistory,
  runDetail,
  runPage,
  samplePage,
} from '../runs.js';
import {
  ArtifactList,
  ArtifactListQuery,
  ArtifactParams,
  Errors,
  FileBody,
  GenerateBody,
  GenerateResponse,
  IdempotencyHeaders,
  INT32_MAX,
  MetricPage,
  MetricsQuery,
  RunListQuery,
  RunPage,
  RunParams,
  RunView,
  SamplePage,
  SamplesQuery,
} from '../schemas.js';
import type { Services } from '../services.js';
import { validatorCompiler } from '../validation.js';

// Opaque cursors for lists ordered by more than one column.
const encodeCursor = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
function decodeCursor<T>(cursor: string, check: (value: unknown) => value is T): T {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (check(value)) return value;
  } catch {}
  throw new ApiError(400, 'invalid_request', 'querystring /cursor: not a cursor this list returned');
}

// Only what Postgres can compare: text without NUL, a step within its 32-bit integers.
const pgString = (v: unknown): v is string =>
  typeof v === 'string' && v.length <= 512 && !v.includes('\u0000');
const isMetricCursor = (v: unknown): v is MetricCursor =>
  typeof v === 'object' &&
  v !== null &&
  pgString((v as MetricCursor).stageId) &&
  Number.isInteger((v as MetricCursor).step) &&
  (v as MetricCursor).step >= 0 &&
  (v as MetricCursor).step <= INT32_MAX &&
  pgString((v as MetricCursor).name);

export const runRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services: s }) => {
  app.post(
    '/runs',
    {
      schema: {
        tags: ['runs'],
        summary: 'Start a run: a pipeline of stages (sft -> reward_model -> ppo)',
        description:
          'The run waits (status queued, stages pending) until its team is under its quota of active runs, then its stages are queued. ' +
          'Send an Idempotency-Key header to make retries safe. Unknown fields, NaN, negative or out-of-range hyperparameters and datasets of the wrong kind are 400s naming the field.',
        headers: IdempotencyHeaders,
        body: RunSpecInput,
        response: { 200: RunView, 201: RunView, ...Errors },
      },
      // validateRunSpec checks the body: its messages name the stage and its rules (order, dataset kinds).
      validatorCompiler: ({ httpPart, schema }) =>
        httpPart === 'body'
          ? (value: unknown) => ({ value })
          : validatorCompiler({ httpPart, schema } as never),
    },
    async (request, reply) => {
      const team = teamOf(request);
      const { run, created } = await createRun(s, team, request.body, request.headers['idempotency-key']);
      return reply.status(created ? 201 : 200).send(run);
    },
  );

  app.get(
    '/runs',
    {
      schema: {
        tags: ['runs'],
        summary: "The team's runs, newest first",
        querystring: RunListQuery,
        response: { 200: RunPage, ...Errors },
      },
    },
    async (request) => {
      const { status, cursor } = request.query;
      return runPage(s, teamOf(request), {
        ...(status ? { status } : {}),
        ...(cursor ? { cursor } : {}),
        limit: request.query.limit ?? 20,
      });
    },
  );

  app.get(
    '/runs/:runId',
    {
      schema: {
        tags: ['runs'],
        summary: 'A run: status and progress per stage, latest metrics, resolved hyperparameters',
        params: RunParams,
        response: { 200: RunView, ...Errors },
      },
    },
    async (request) => runDetail(s, teamOf(request), request.params.runId),
  );

  app.post(
    '/runs/:runId/cancel',
    {
      schema: {
        tags: ['runs'],
        summary: 'Cancel a run (a running stage stops at its next check, within seconds)',
        params: RunParams,
        response: { 202: RunView, ...Errors },
      },
    },
    async (request, reply) =>
      reply.status(202).send(await cancelRun(s, teamOf(request), request.params.runId)),
  );

  app.post(
    '/runs/:runId/pause',
    {
      schema: {
        tags: ['runs'],
        summary:
          'Pause a run (its running stage checkpoints at its next step and waits; resume goes on from there)',
        params: RunParams,
        response: { 202: RunView, ...Errors },
      },
    },
    async (request, reply) =>
      reply.status(202).send(await pauseRun(s, teamOf(request), request.params.runId)),
  );

  app.post(
    '/runs/:runId/resume',
    {
      schema: {
        tags: ['runs'],
        summary: 'Resume a paused run from its stage’s checkpoint',
        params: RunParams,
        response: { 200: RunView, ...Errors },
      },
    },
    async (request) => resumeRun(s, teamOf(request), request.params.runId),
  );

  app.get(
    '/runs/:runId/metrics',
    {
      schema: {
        tags: ['runs'],
        summary: 'Metric history of a run (by stage, step, name)',
        params: RunParams,
        querystring: MetricsQuery,
        response: { 200: MetricPage, ...Errors },
      },
    },
    async (request) => {
      const { stageId, name, afterStep, cursor } = request.query;
      const { items, next } = await metricHistory(s, teamOf(request), request.params.runId, {
        ...(stageId === undefined ? {} : { stageId }),
        ...(name ? { name } : {}),
        ...(afterStep === undefined ? {} : { afterStep }),
        ...(cursor ? { after: decodeCursor(cursor, isMetricCursor) } : {}),
        limit: request.query.limit ?? 1000,
      });
      return { items, nextCursor: next ? encodeCursor(next) : null };
    },
  );

  app.get(
    '/runs/:runId/samples',
    {
      schema: {
        tags: ['runs'],
        summary: 'Rollout samples (prompt, response, score, KL), newest step first',
        params: RunParams,
        querystring: SamplesQuery,
        response: { 200: SamplePage, ...Errors },
      },
    },
    async (request) => {
      const { stageId, cursor } = request.query;
      return samplePage(s, teamOf(request), request.params.runId, {
        ...(stageId === undefined ? {} : { stageId }),
        ...(cursor ? { cursor } : {}),
        limit: request.query.limit ?? 50,
      });
    },
  );

  app.get(
    '/runs/:runId/artifacts',
    {
      schema: {
        tags: ['artifacts'],
        summary: 'Checkpoints, final weights (safetensors) and ONNX exports of a run',
        description:
          'Filter by `kind` (checkpoint, model, onnx, adapter: a LoRA stage’s PEFT files) and `stageId`. Each has the sha256 of its file.',
        params: RunParams,
        querystring: ArtifactListQuery,
        response: { 200: ArtifactList, ...Errors },
      },
    },
    async (request) => {
      const { kind, stageId } = request.query;
      const filter = { ...(kind ? { kind } : {}), ...(stageId ? { stageId } : {}) };
      return { items: await artifactList(s, teamOf(request), request.params.runId, filter) };
    },
  );

  app.get(
    '/runs/:runId/artifacts/:artifactId',
    {
      schema: {
        tags: ['artifacts'],
        summary: 'One artifact',
        params: ArtifactParams,
        response: { 200: Artifact, ...Errors },
      },
    },
    async (request) => {
      const { runId, artifactId } = request.params;
      return (await findArtifact(s, teamOf(request), runId, artifactId)).artifact;
    },
  );

  app.get(
    '/runs/:runId/artifacts/:artifactId/download',
    {
      schema: {
        tags: ['artifacts'],
        summary: 'Download an artifact file',
        description:
          'The file is checked against its recorded sha256 before a byte is sent (header `x-content-sha256`); ' +
          'a damaged file is a 500 `artifact_corrupt`, never bad bytes.',
        params: ArtifactParams,
        response: { 200: FileBody, ...Errors },
      },
    },
    async (request, reply) => {
      const { runId, artifactId } = request.params;
      const { artifact, path } = await findArtifact(s, teamOf(request), runId, artifactId);
      if (!(await s.artifacts.exists(path))) {
        throw new ApiError(404, 'not_found', `artifact ${artifact.id}: its file ${path} is not in the store`);
      }
      const { bytes } = await s.artifacts.info(path);
      // Hashed before sending: once the body streams, a mismatch could only cut the connection.
      const actual = await s.artifacts.hashContent(path);
      if (artifact.sha256 !== null && actual !== artifact.sha256) {
        throw new ApiError(
          500,
          'artifact_corrupt',
          `artifact ${artifact.id}: the stored file ${path} does not match its sha256 (recorded ${artifact.sha256}, now ${actual}); it is damaged on disk`,
        );
      }
      const file = path.slice(path.lastIndexOf('/') + 1);
      return reply
        .header('content-type', 'application/octet-stream')
        .header('content-length', bytes)
        .header('x-content-sha256', actual)
        .header('content-disposition', `attachment; filename="${file}"`)
        .send(s.artifacts.stream(path));
    },
  );

  app.post(
    '/runs/:runId/generate',
    {
      schema: {
        tags: ['runs'],
        summary: "Sample responses from a finished run's policy",
        params: RunParams,
        body: GenerateBody,
        response: { 200: GenerateResponse, ...Errors },
      },
    },
    async (request) => {
      const run = await findRun(s, teamOf(request), request.params.runId);
      return s.sampler.generate(run, request.body);
    },
  );
};
