// The corpus tests' checks: a refused request is a 4xx JSON error that stored nothing; an answered one is never a
// 5xx; the server stays ready. Shared by the corpus files (test/api-corpus*.test.ts).
import { readdir } from 'node:fs/promises';
import type { InjectOptions } from 'fastify';
import { expect } from 'vitest';
import type { TestApi } from './api-helpers.js';

export function corpusChecks(api: () => TestApi) {
  const statusCounts = new Map<number, number>();
  const tally = (status: number) => statusCounts.set(status, (statusCounts.get(status) ?? 0) + 1);

  // What a refused write must leave unchanged.
  async function snapshot() {
    const p = api().app.services.prisma;
    const counts = await Promise.all([
      p.team.count(),
      p.apiKey.count(),
      p.dataset.count(),
      p.run.count(),
      p.stage.count(),
      p.artifact.count(),
      p.metricPoint.count(),
      p.sample.count(),
      p.model.count(),
      p.file.count(),
      p.evaluation.count(),
    ]);
    const files = (await readdir(api().artifactDir, { recursive: true })).sort();
    return { counts, files };
  }

  /** Sends a request that must be refused: a 4xx with a JSON error body (ours or OpenAI's), nothing stored. */
  async function refused(options: InjectOptions, expected?: number) {
    const before = await snapshot();
    const response = await api().app.inject(options);
    tally(response.statusCode);
    const context = `${options.method} ${String(options.url).slice(0, 200)} -> ${response.statusCode} ${response.body.slice(0, 300)}`;
    expect(response.statusCode, context).toBeGreaterThanOrEqual(400);
    expect(response.statusCode, context).toBeLessThan(500);
    if (expected !== undefined) expect(response.statusCode, context).toBe(expected);
    expect(response.headers['content-type'], context).toMatch(/^application\/json/);
    const body = response.json();
    expect(typeof body.error?.code === 'string' || body.error?.code === null, context).toBe(true);
    expect(typeof body.error?.message, context).toBe('string');
    expect(await snapshot(), context).toEqual(before);
    return body.error as { code: string; message: string; field?: string; param?: string | null };
  }

  /** Sends a request that may be valid (read-only routes): never a 5xx; a refusal is a JSON error. */
  async function answered(options: InjectOptions) {
    const response = await api().app.inject(options);
    tally(response.statusCode);
    const context = `${options.method} ${String(options.url).slice(0, 200)} -> ${response.statusCode} ${response.body.slice(0, 300)}`;
    expect(response.statusCode, context).toBeLessThan(500);
    if (response.statusCode >= 400) {
      expect(response.headers['content-type'], context).toMatch(/^application\/json/);
      expect(typeof response.json().error?.message, context).toBe('string');
    }
    return response;
  }

  async function expectReady() {
    const ready = await api().app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode, ready.body).toBe(200);
  }

  return { statusCounts, snapshot, refused, answered, expectReady };
}
