// Every error leaves the API as `{ error: { code, message, field? } }` (ErrorBody of @rlhf/contracts):
// client mistakes get a 4xx naming the problem, only our own bugs become a 500.
import { ContractError, type ErrorBody, type FieldError, formatFieldError } from '@rlhf/contracts';
import type { FastifyError, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/** A client error with its HTTP status; `field` is a JSON Pointer into the request body. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/** 404 for ids that do not exist and for other teams' ids alike (no existence leak). */
export const notFound = (what: string, id: string) =>
  new ApiError(404, 'not_found', `${what} ${id} not found`);

/** 400 naming every bad field; `field` points at the first. */
export function invalidRequest(errors: FieldError[], code = 'invalid_request'): ApiError {
  const field = errors[0]?.path;
  return new ApiError(400, code, errors.map(formatFieldError).join('; '), field || undefined);
}

const CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
};

type Body = ErrorBody['error'];

// Fastify's validation errors carry where (body, querystring, params, headers) and our FieldError paths.
function validationBody(error: FastifyError): Body {
  const where = error.validationContext ?? 'body';
  const errors = (error.validation ?? []).map((e) => ({
    path: e.instancePath,
    message: e.message ?? 'invalid',
  }));
  const message = errors.map((e) =>
    where === 'body' ? formatFieldError(e) : `${where} ${formatFieldError(e)}`,
  );
  const field = where === 'body' && errors[0]?.path ? errors[0].path : undefined;
  return { code: 'invalid_request', message: message.join('; '), ...(field ? { field } : {}) };
}

const errnoOf = (error: unknown): string => (error as NodeJS.ErrnoException | null)?.code ?? '';

/** A write to the artifact store (a local directory or a mount) that the disk refused: not our bug. */
export function storeFault(error: unknown): { status: number; body: Body } | null {
  const code = errnoOf(error);
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return {
      status: 507,
      body: {
        code: 'insufficient_storage',
        message: 'the artifact store is full; nothing was stored, try again later',
      },
    };
  if (code === 'EROFS')
    return {
      status: 503,
      body: {
        code: 'store_read_only',
        message: 'the artifact store is read-only; nothing was stored, try again later',
      },
    };
  if (code === 'EACCES' || code === 'EPERM')
    return {
      status: 503,
      body: {
        code: 'store_unavailable',
        message: 'the artifact store refused the write; nothing was stored',
      },
    };
  return null;
}

function describe(error: FastifyError | Error): { status: number; body: Body } {
  if (error instanceof ApiError) {
    const body: Body = { code: error.code, message: error.message };
    if (error.field) body.field = error.field;
    return { status: error.statusCode, body };
  }
  if (error instanceof ContractError) return describe(invalidRequest(error.errors));
  const fault = storeFault(error);
  if (fault) return fault;
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) return { status: 400, body: validationBody(fastifyError) };
  const status = fastifyError.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return { status, body: { code: CODES[status] ?? 'bad_request', message: error.message } };
  }
  return { status: 500, body: { code: 'internal_error', message: 'internal error (logged)' } };
}

/** The error and not-found handlers of the whole app. */
export const errorHandling = fp(async (app: FastifyInstance) => {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const { status, body } = describe(error);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code: body.code, message: body.message }, 'client error');
    if (status === 503 || status === 507) reply.header('retry-after', '60');
    return reply.status(status).send({ error: body });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({
      error: { code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` },
    }),
  );
});
