// The OpenAI-compatible routes (files, fine-tuning jobs with their events and checkpoints), in OpenAI's request
// and response shapes so its SDKs work with only baseURL and apiKey changed. Team keys, as the rest of /v1.
import multipart from '@fastify/multipart';
import type { FastifyError, FastifyPluginAsync, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { teamOf } from '../auth.js';
import { ApiError } from '../errors.js';
import type { Services } from '../services.js';
import { completionRoutes } from './completions.js';
import { jobCheckpoints, jobEvents, pageAfter } from './events.js';
import { deleteFile, fileObject, findFile, listFiles, uploadFile } from './files.js';
import { cancelJob, createJob, findJobRun, jobObject, listJobRuns, pauseJob } from './jobs.js';

/** Largest file the multipart parser reads at all; a team's own limit (maxUploadBytes) is checked too. */
const MAX_FILE_BYTES = 512 * 1024 * 1024;

const TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'invalid_request_error',
  409: 'invalid_request_error',
  413: 'invalid_request_error',
  429: 'rate_limit_error',
};

/** OpenAI's error object: { error: { message, type, param, code } }. */
function openaiError(error: FastifyError | Error): { status: number; body: object } {
  let status = 500;
  let message = 'internal error (logged)';
  let param: string | null = null;
  let code: string | null = 'internal_error';
  if (error instanceof ApiError) {
    ({ statusCode: status, message, code } = error);
    param = error.field ? error.field.replace(/^\//, '').replaceAll('/', '.') : null;
  } else if ((error as FastifyError).validation) {
    const first = (error as FastifyError).validation?.[0];
    status = 400;
    code = 'invalid_request';
    message = error.message;
    param = first?.instancePath ? first.instancePath.replace(/^\//, '').replaceAll('/', '.') : null;
  } else if ((error as FastifyError).statusCode && (error as FastifyError).statusCode! < 500) {
    status = (error as FastifyError).statusCode as number;
    message = error.message;
    code = null;
  }
  return { status, body: { error: { message, type: TYPES[status] ?? 'server_error', param, code } } };
}

const closed = { additionalProperties: false } as const;
const cursor = Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_-]+$' }));
const limit = Type.Optional(Type.Integer({ minimum: 1, maximum: 100 }));
/** List queries as OpenAI's: `after` (the last id of the previous page) and `limit`. */
const ListQuery = { querystring: Type.Object({ after: cursor, limit }, closed) };
const FileListQuery = {
  querystring: Type.Object(
    {
      after: cursor,
      limit,
      purpose: Type.Optional(Type.String()),
      order: Type.Optional(Type.Enum(['asc', 'desc'])),
    },
    closed,
  ),
};
const JobListQuery = {
  querystring: Type.Object({ after: cursor, limit, metadata: Type.Optional(Type.Unknown()) }, closed),
};

const limitOf = (value: unknown, fallback: number) => {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 100)
    throw new ApiError(400, 'invalid_request', 'limit must be an integer in [1, 100]', 'limit');
  return n;
};
const query = (request: FastifyRequest) => request.query as Record<string, string | undefined>;
const params = (request: FastifyRequest) => request.params as Record<string, string>;

export const openaiRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services: s }) => {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const { status, body } = openaiError(error);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    return reply.status(status).send(body);
  });
  await app.register(multipart, { limits: { fileSize: MAX_FILE_BYTES, files: 1, fields: 8 } });
  await app.register(completionRoutes, { services: s });

  app.post('/files', async (request, reply) => {
    const team = teamOf(request);
    if (!request.isMultipart())
      throw new ApiError(400, 'invalid_request', 'send the file as multipart/form-data', 'file');
    let file: { filename: string; content: Buffer } | undefined;
    let purpose: string | undefined;
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        const content = await part.toBuffer();
        if (content.length > Number(team.maxUploadBytes))
          throw new ApiError(
            413,
            'payload_too_large',
            `file larger than the team's limit of ${team.maxUploadBytes} bytes`,
            'file',
          );
        file = { filename: part.filename || 'upload.jsonl', content };
      } else if (part.fieldname === 'purpose') purpose = String(part.value);
    }
    if (!file) throw new ApiError(400, 'invalid_request', 'missing required parameter file', 'file');
    if (!purpose) throw new ApiError(400, 'invalid_request', 'missing required parameter purpose', 'purpose');
    const row = await uploadFile(s, team, { ...file, purpose });
    return reply.status(200).send(fileObject(row));
  });

  app.get('/files', { schema: FileListQuery }, async (request) => {
    const { rows, hasMore } = await listFiles(s, teamOf(request), {
      ...(query(request).after ? { after: query(request).after } : {}),
      limit: limitOf(query(request).limit, 100),
    });
    return { object: 'list', data: rows.map(fileObject), has_more: hasMore };
  });
  app.get('/files/:file_id', async (request) =>
    fileObject(await findFile(s, teamOf(request), params(request).file_id)),
  );
  app.get('/files/:file_id/content', async (request, reply) => {
    const row = await findFile(s, teamOf(request), params(request).file_id);
    return reply.type('application/jsonl').send(Buffer.from(await s.artifacts.get(row.key)));
  });
  app.delete('/files/:file_id', async (request) => {
    await deleteFile(s, teamOf(request), params(request).file_id);
    return { id: params(request).file_id, object: 'file', deleted: true };
  });

  app.post('/fine_tuning/jobs', async (request) => {
    const team = teamOf(request);
    return jobObject(team, await createJob(s, team, request.body));
  });
  app.get('/fine_tuning/jobs', { schema: JobListQuery }, async (request) => {
    const team = teamOf(request);
    const { rows, hasMore } = await listJobRuns(s, team, {
      ...(query(request).after ? { after: query(request).after } : {}),
      limit: limitOf(query(request).limit, 20),
    });
    return { object: 'list', data: rows.map((run) => jobObject(team, run)), has_more: hasMore };
  });
  app.get('/fine_tuning/jobs/:job_id', async (request) => {
    const team = teamOf(request);
    return jobObject(team, await findJobRun(s, team, params(request).job_id));
  });
  app.post('/fine_tuning/jobs/:job_id/cancel', async (request) => {
    const team = teamOf(request);
    return jobObject(team, await cancelJob(s, team, params(request).job_id));
  });
  for (const action of ['pause', 'resume'] as const)
    app.post(`/fine_tuning/jobs/:job_id/${action}`, async (request) => {
      const team = teamOf(request);
      return jobObject(team, await pauseJob(s, team, params(request).job_id, action));
    });
  app.get('/fine_tuning/jobs/:job_id/events', { schema: ListQuery }, async (request) => {
    const run = await findJobRun(s, teamOf(request), params(request).job_id);
    const page = pageAfter(await jobEvents(s, run), query(request).after, limitOf(query(request).limit, 20));
    return { object: 'list', ...page };
  });
  app.get('/fine_tuning/jobs/:job_id/checkpoints', { schema: ListQuery }, async (request) => {
    const team = teamOf(request);
    const run = await findJobRun(s, team, params(request).job_id);
    const page = pageAfter(
      await jobCheckpoints(s, team, run),
      query(request).after,
      limitOf(query(request).limit, 10),
    );
    return {
      object: 'list',
      ...page,
      first_id: page.data[0]?.id ?? null,
      last_id: page.data.at(-1)?.id ?? null,
    };
  });
};
