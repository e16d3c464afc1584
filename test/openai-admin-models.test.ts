// Admin models (MODEL_DIRS: read-only directories on shared storage) through the OpenAI-compatible API with the
// official client: any team chats with one by name and starts a fine-tuning job from it; the inference worker reads
// the directory in place (its key is the absolute directory, not a key of the artifact store).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningInferenceWorker } from '@rlhf/worker';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ADMIN_KEY, baseUrl, createTestTeam, startApi, type TestApi, tinyLlamaFiles } from './api-helpers.js';
import { startTestInferenceWorker } from './worker-helpers.js';

describe('admin models through the OpenAI-compatible API', () => {
  let api: TestApi;
  let inference: RunningInferenceWorker;
  let shared: string;
  beforeAll(async () => {
    shared = await mkdtemp(join(tmpdir(), 'rlhf-openai-shared-'));
    const dir = join(shared, 'shared-llama');
    await mkdir(dir);
    for (const [name, data] of Object.entries(tinyLlamaFiles())) await writeFile(join(dir, name), data);
    api = await startApi({ modelDirs: [dir] });
    // Registered at start-up by the API's main; the admin scan route does it here.
    const scan = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/models/scan',
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    expect(scan.statusCode, scan.body).toBe(200);
    inference = await startTestInferenceWorker(api, 'admin-models-inference');
  });
  afterAll(async () => {
    await inference?.close();
    await api?.close();
    await rm(shared, { recursive: true, force: true });
  });

  test('every team chats with a MODEL_DIRS model by name and fine-tunes from it', async () => {
    for (const team of [await createTestTeam(api.app), await createTestTeam(api.app)]) {
      const client = new OpenAI({ baseURL: `${await baseUrl(api.app)}/v1`, apiKey: team.key, maxRetries: 0 });
      const listed = (await client.models.list()).data as (OpenAI.Models.Model & { name?: string })[];
      expect(listed.map((m) => m.name)).toContain('shared-llama');
      const chat = await client.chat.completions.create({
        model: 'shared-llama',
        messages: [{ role: 'user', content: 'sort: 3 1 2' }],
        max_completion_tokens: 4,
        seed: 1,
      });
      expect(chat.model).toBe('shared-llama');
      expect(chat.usage!.completion_tokens).toBeGreaterThan(0);
      const line = JSON.stringify({
        messages: [
          { role: 'user', content: 'sort: 2 1' },
          { role: 'assistant', content: '1 2' },
        ],
      });
      const file = await client.files.create({
        file: await toFile(Buffer.from(`${line}\n`), 'train.jsonl'),
        purpose: 'fine-tune',
      });
      const job = await client.fineTuning.jobs.create({ model: 'shared-llama', training_file: file.id });
      expect(job.model).toBe('shared-llama');
      expect((await client.fineTuning.jobs.cancel(job.id)).status).toBe('cancelled');
    }
  }, 120_000);
});
