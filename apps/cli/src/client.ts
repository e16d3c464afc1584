// The REST API as typed functions, one per endpoint the CLI uses. Errors are ApiRequestError (the API
// answered with an error body) or NetworkError (no answer), each with a one-line message.
import type { EvaluationView, LeaderboardView, ResolvedModel, RunView } from '@rlhf/api';
import type {
  Artifact,
  Dataset,
  DatasetKind,
  EvalJudgeType,
  MetricPoint,
  RegisteredModelView,
  RunStatus,
  Sample,
  WorkerInfo,
} from '@rlhf/contracts';
import { readSse, type SseEvent } from './sse.js';

export type { EvaluationView, LeaderboardView, ResolvedModel, RunView };
export type StageView = RunView['stages'][number];

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** A model a run of the team fine-tuned (`ft:<base>:<team>:<suffix>:<run id>`), as OpenAI lists it. */
export interface FineTunedModel {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

/** The API refused a request: its status and `{ error: { code, message, field? } }`. */
export class ApiRequestError extends Error {
  override name = 'ApiRequestError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The API could not be reached (or the connection broke). */
export class NetworkError extends Error {
  override name = 'NetworkError';
}

export interface ClientOptions {
  url: string;
  key: string;
  /** Per request, except streams and downloads (default 60 s). */
  timeoutMs?: number;
}

const query = (params: Record<string, string | number | undefined>): string => {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params))
    if (value !== undefined) search.set(name, String(value));
  const text = search.toString();
  return text ? `?${text}` : '';
};

const describe = (error: unknown): string => {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
};

async function errorOf(response: Response, what: string): Promise<ApiRequestError> {
  const text = await response.text().catch(() => '');
  let code = `http_${response.status}`;
  let message = text.trim().split('\n')[0] || response.statusText;
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string; field?: string } };
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = body.error.message;
  } catch {}
  return new ApiRequestError(response.status, code, `${what}: ${response.status} ${code}: ${message}`);
}

export function createClient({ url, key, timeoutMs = 60_000 }: ClientOptions) {
  const auth = { authorization: `Bearer ${key}` };

  async function send(
    what: string,
    path: string,
    init: RequestInit & { timeout?: boolean } = {},
  ): Promise<Response> {
    const { timeout, ...request } = init;
    const signals = [init.signal, timeout === false ? undefined : AbortSignal.timeout(timeoutMs)].filter(
      (s): s is AbortSignal => s != null,
    );
    let response: Response;
    try {
      response = await fetch(`${url}${path}`, {
        ...request,
        headers: { ...auth, ...init.headers },
        signal: signals.length > 1 ? AbortSignal.any(signals) : (signals[0] ?? null),
      });
    } catch (error) {
      if (init.signal?.aborted) throw error;
      throw new NetworkError(`${what}: cannot reach ${url}: ${describe(error)}`);
    }
    if (!response.ok) throw await errorOf(response, what);
    return response;
  }
  async function json<T>(
    what: string,
    path: string,
    init: RequestInit & { timeout?: boolean } = {},
  ): Promise<T> {
    const response = await send(what, path, init);
    try {
      return (await response.json()) as T;
    } catch (error) {
      throw new NetworkError(`${what}: the answer from ${url} is not JSON: ${describe(error)}`);
    }
  }
  const post = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

  return {
    url,
    /** POST /v1/datasets: the JSONL bytes as the body; `created` is false when the content was stored already. */
    async uploadDataset(input: { name: string; kind: DatasetKind; body: Uint8Array }) {
      const response = await send(
        'upload dataset',
        `/v1/datasets${query({ name: input.name, kind: input.kind })}`,
        {
          method: 'POST',
          timeout: false, // an upload takes as long as the bytes take
          headers: { 'content-type': 'application/jsonl' },
          body: input.body,
        },
      );
      return { dataset: (await response.json()) as Dataset, created: response.status === 201 };
    },
    /** GET /v1/datasets */
    listDatasets: (params: { kind?: DatasetKind; limit?: number; cursor?: string } = {}) =>
      json<Page<Dataset>>('list datasets', `/v1/datasets${query(params)}`),
    /** GET /v1/datasets/:id */
    getDataset: (id: string) => json<Dataset>('get dataset', `/v1/datasets/${encodeURIComponent(id)}`),
    /** POST /v1/models: a tar archive of an HF model directory as the body. */
    uploadModel: (input: { name: string; body: Uint8Array }) =>
      json<RegisteredModelView>('upload model', `/v1/models${query({ name: input.name })}`, {
        method: 'POST',
        timeout: false,
        headers: { 'content-type': 'application/x-tar' },
        body: input.body,
      }),
    /** GET /v1/models (OpenAI's list shape; the team's fine-tuned models come as bare OpenAI model objects) */
    listModels: (params: { limit?: number; cursor?: string } = {}) =>
      json<{ data: (RegisteredModelView | FineTunedModel)[]; nextCursor: string | null }>(
        'list models',
        `/v1/models${query(params)}`,
      ),
    /** POST /v1/runs */
    createRun: (spec: unknown, idempotencyKey?: string) =>
      json<RunView>(
        'submit run',
        '/v1/runs',
        post(spec, idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
      ),
    /** GET /v1/runs */
    listRuns: (params: { status?: RunStatus; limit?: number; cursor?: string } = {}) =>
      json<Page<RunView>>('list runs', `/v1/runs${query(params)}`),
    /** GET /v1/runs/:id */
    getRun: (id: string) => json<RunView>('get run', `/v1/runs/${encodeURIComponent(id)}`),
    /** POST /v1/runs/:id/cancel */
    cancelRun: (id: string) =>
      json<RunView>('cancel run', `/v1/runs/${encodeURIComponent(id)}/cancel`, { method: 'POST' }),
    /** GET /v1/runs/:id/metrics */
    metrics: (
      id: string,
      params: { stageId?: string; name?: string; afterStep?: number; limit?: number; cursor?: string } = {},
    ) => json<Page<MetricPoint>>('metrics', `/v1/runs/${encodeURIComponent(id)}/metrics${query(params)}`),
    /** GET /v1/runs/:id/samples */
    samples: (id: string, params: { stageId?: string; limit?: number; cursor?: string } = {}) =>
      json<Page<Sample>>('samples', `/v1/runs/${encodeURIComponent(id)}/samples${query(params)}`),
    /** GET /v1/runs/:id/artifacts */
    artifacts: (id: string) =>
      json<{ items: Artifact[] }>('artifacts', `/v1/runs/${encodeURIComponent(id)}/artifacts`),
    /** GET /v1/runs/:id/artifacts/:artifactId/download: the response, its body not yet read. */
    downloadArtifact: (runId: string, artifactId: string, signal?: AbortSignal) =>
      send(
        'download',
        `/v1/runs/${encodeURIComponent(runId)}/artifacts/${encodeURIComponent(artifactId)}/download`,
        { timeout: false, ...(signal ? { signal } : {}) },
      ),
    /** POST /v1/evaluations */
    createEvaluation: (spec: unknown) =>
      json<EvaluationView>('create evaluation', '/v1/evaluations', post(spec)),
    /** GET /v1/evaluations/:id */
    getEvaluation: (id: string) =>
      json<EvaluationView>('get evaluation', `/v1/evaluations/${encodeURIComponent(id)}`),
    /** GET /v1/evaluations */
    listEvaluations: (params: { limit?: number; cursor?: string } = {}) =>
      json<Page<EvaluationView>>('list evaluations', `/v1/evaluations${query(params)}`),
    /** GET /v1/leaderboard */
    leaderboard: (params: { judge?: EvalJudgeType } = {}) =>
      json<LeaderboardView>('leaderboard', `/v1/leaderboard${query(params)}`),
    /** GET /v1/workers */
    listWorkers: () => json<{ items: WorkerInfo[] }>('list workers', '/v1/workers'),
    /** GET /v1/runs/:id/events (SSE): the events until the server ends the stream or `signal` aborts. */
    async *events(
      id: string,
      options: { signal?: AbortSignal; lastEventId?: string } = {},
    ): AsyncGenerator<SseEvent> {
      const response = await send('events', `/v1/runs/${encodeURIComponent(id)}/events`, {
        timeout: false,
        headers: {
          accept: 'text/event-stream',
          ...(options.lastEventId ? { 'last-event-id': options.lastEventId } : {}),
        },
        ...(options.signal ? { signal: options.signal } : {}),
      });
      if (!response.body) return;
      try {
        yield* readSse(response.body);
      } catch (error) {
        if (options.signal?.aborted) return;
        throw new NetworkError(`events: the stream from ${url} broke: ${describe(error)}`);
      }
    },
  };
}

export type Client = ReturnType<typeof createClient>;

/** Every item of a paged list. */
export async function allPages<T>(read: (cursor: string | undefined) => Promise<Page<T>>): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await read(cursor);
    items.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return items;
}
