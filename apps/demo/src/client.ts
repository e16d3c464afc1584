// A small client of the REST API (what a team's script would write): datasets, runs, metrics, samples.
import type { RunView } from '@rlhf/api';
import type { Dataset, MetricPoint, Sample, StageKind } from '@rlhf/contracts';

export class ApiClientError extends Error {
  override name = 'ApiClientError';
  constructor(
    readonly status: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what}: HTTP ${status} ${body}`);
  }
}

export interface ApiClient {
  uploadDataset(name: string, kind: string, jsonl: string): Promise<Dataset>;
  createRun(spec: unknown, idempotencyKey?: string): Promise<RunView>;
  getRun(runId: string): Promise<RunView>;
  cancelRun(runId: string): Promise<void>;
  /** The whole metric history of a run (every page). */
  metrics(runId: string, filter?: { stageId?: string; name?: string }): Promise<MetricPoint[]>;
  samples(runId: string): Promise<Sample[]>;
}

export function createApiClient(baseUrl: string, apiKey: string): ApiClient {
  const headers = { authorization: `Bearer ${apiKey}` };
  async function call<T>(what: string, path: string, init: RequestInit = {}): Promise<T> {
    const response = await fetch(`${baseUrl}${path}`, { ...init, headers: { ...headers, ...init.headers } });
    const text = await response.text();
    if (!response.ok) throw new ApiClientError(response.status, text, what);
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }
  async function allPages<T>(what: string, path: string): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | null = null;
    do {
      const sep = path.includes('?') ? '&' : '?';
      const url: string = cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path;
      const page: { items: T[]; nextCursor: string | null } = await call(what, url);
      items.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    return items;
  }
  return {
    uploadDataset: (name, kind, jsonl) =>
      call('upload dataset', `/v1/datasets?name=${encodeURIComponent(name)}&kind=${kind}`, {
        method: 'POST',
        headers: { 'content-type': 'application/jsonl' },
        body: jsonl,
      }),
    createRun: (spec, idempotencyKey) =>
      call('create run', '/v1/runs', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
        },
        body: JSON.stringify(spec),
      }),
    getRun: (runId) => call('get run', `/v1/runs/${runId}`),
    async cancelRun(runId) {
      await call('cancel run', `/v1/runs/${runId}/cancel`, { method: 'POST' });
    },
    metrics(runId, filter = {}) {
      const query = new URLSearchParams({ limit: '10000' });
      if (filter.stageId) query.set('stageId', filter.stageId);
      if (filter.name) query.set('name', filter.name);
      return allPages('metrics', `/v1/runs/${runId}/metrics?${query}`);
    },
    samples: (runId) => allPages('samples', `/v1/runs/${runId}/samples?limit=500`),
  };
}

/** The stage of a run by kind. */
export function stageOf(run: RunView, kind: StageKind): RunView['stages'][number] {
  const stage = run.stages.find((s) => s.kind === kind);
  if (!stage) throw new Error(`run ${run.id} has no ${kind} stage`);
  return stage;
}
