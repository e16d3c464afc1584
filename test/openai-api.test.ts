// The OpenAI-compatible fine-tuning API driven by the official `openai` npm client (pinned), with only baseURL
// and apiKey changed, against the real server and a real worker: files, a supervised job on an uploaded tiny
// Llama, its events and checkpoints, a DPO job from the fine-tuned model, cancel, and the typed errors.
import type { RunningWorker } from '@rlhf/worker';
import OpenAI, { AuthenticationError, BadRequestError, NotFoundError, toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { baseUrl, createTestTeam, registerModel, startApi, type TestApi } from './api-helpers.js';
import { startTestWorker } from './worker-helpers.js';

const jsonl = (rows: unknown[]) => `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`;
const SUPERVISED = jsonl(
  ['3 1 2', '9 7', '5 4 6', '8 2', '6 1', '4 3 2'].map((digits) => ({
    messages: [
      { role: 'user', content: `sort: ${digits}` },
      { role: 'assistant', content: digits.split(' ').sort().join(' ') },
    ],
  })),
);
const DPO = jsonl(
  ['3 1 2', '9 7', '5 4 6', '8 2'].map((digits) => ({
    input: { messages: [{ role: 'user', content: `sort: ${digits}` }] },
    preferred_output: [{ role: 'assistant', content: digits.split(' ').sort().join(' ') }],
    non_preferred_output: [{ role: 'assistant', content: digits }],
  })),
);

const REINFORCEMENT = jsonl(
  ['3 1 2', '9 7', '5 4 6', '8 2'].map((digits) => ({
    messages: [{ role: 'user', content: `sort: ${digits}` }],
    answer: digits.split(' ').sort().join(' '),
  })),
);

async function finished(client: OpenAI, id: string) {
  for (let i = 0; i < 600; i++) {
    const job = await client.fineTuning.jobs.retrieve(id);
    if (['succeeded', 'failed', 'cancelled'].includes(job.status)) return job;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`job ${id} did not finish`);
}

describe('OpenAI-compatible fine-tuning API with the official client', () => {
  let api: TestApi;
  let worker: RunningWorker;
  let client: OpenAI;
  let other: OpenAI;
  let url: string;
  beforeAll(async () => {
    api = await startApi();
    worker = await startTestWorker(api, 'openai-worker');
    url = `${await baseUrl(api.app)}/v1`;
    const team = await createTestTeam(api.app);
    await registerModel(api.app, team.headers, 'tiny-llama');
    client = new OpenAI({ baseURL: url, apiKey: team.key, maxRetries: 0 });
    other = new OpenAI({ baseURL: url, apiKey: (await createTestTeam(api.app)).key, maxRetries: 0 });
  });
  afterAll(async () => {
    await worker?.close();
    await api?.close();
  });

  test('files: upload, list, retrieve, content, delete; a bad line is a BadRequestError naming it', async () => {
    const file = await client.files.create({
      file: await toFile(Buffer.from(SUPERVISED), 'train.jsonl'),
      purpose: 'fine-tune',
    });
    expect(file).toMatchObject({
      object: 'file',
      filename: 'train.jsonl',
      purpose: 'fine-tune',
      bytes: SUPERVISED.length,
    });
    expect((await client.files.retrieve(file.id)).id).toBe(file.id);
    expect(await (await client.files.content(file.id)).text()).toBe(SUPERVISED);
    const listed = [];
    for await (const f of client.files.list()) listed.push(f.id);
    expect(listed).toContain(file.id);
    await expect(other.files.retrieve(file.id)).rejects.toBeInstanceOf(NotFoundError);
    expect(await client.files.delete(file.id)).toMatchObject({ id: file.id, deleted: true });
    await expect(client.files.retrieve(file.id)).rejects.toBeInstanceOf(NotFoundError);

    const broken = `${SUPERVISED.split('\n')[0]}\n{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x", "weight": 2}]}\n`;
    const error = await client.files
      .create({ file: await toFile(Buffer.from(broken), 'bad.jsonl'), purpose: 'fine-tune' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).param).toBe('file');
    expect((error as BadRequestError).message).toMatch(/line 2: messages\/1\/weight/);
  });

  test('a supervised job on an uploaded model: events until succeeded, checkpoints, then DPO from the fine-tuned model', async () => {
    const training = await client.files.create({
      file: await toFile(Buffer.from(SUPERVISED), 'sft.jsonl'),
      purpose: 'fine-tune',
    });
    const job = await client.fineTuning.jobs.create({
      model: 'tiny-llama',
      training_file: training.id,
      suffix: 'sorter',
      seed: 7,
      metadata: { owner: 'test' },
      method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 3, batch_size: 2 } } },
    });
    expect(job).toMatchObject({
      object: 'fine_tuning.job',
      model: 'tiny-llama',
      training_file: training.id,
      seed: 7,
    });
    const done = await finished(client, job.id);
    expect(done.error).toBeNull();
    expect(done.status).toBe('succeeded');
    expect(done.fine_tuned_model).toMatch(
      new RegExp(`^ft:tiny-llama:.+:sorter:${job.id.replace('ftjob-', '')}$`),
    );

    // Events page by page (the client follows `after` while has_more): metrics per step and the completion.
    const events = [];
    for await (const event of client.fineTuning.jobs.listEvents(job.id, { limit: 2 })) events.push(event);
    expect(events.length).toBeGreaterThan(4);
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
    expect(events[0].message).toBe('The job has successfully completed');
    expect(events.at(-1)?.message).toBe('Created fine-tuning job');
    const metrics = events.filter((e) => e.type === 'metrics');
    expect(metrics.length).toBeGreaterThan(0);
    expect(typeof (metrics[0].data as { train_loss: number }).train_loss).toBe('number');

    const checkpoints = [];
    for await (const c of client.fineTuning.jobs.checkpoints.list(job.id)) checkpoints.push(c);
    // 6 conversations (tiny-llama's context is 64 tokens: no system turn) minus 1 held out, 2 per step: 3 steps an epoch,
    // a checkpoint per epoch (the worker keeps the newest 2) and the final model.
    expect(checkpoints.length).toBeGreaterThanOrEqual(2);
    expect(checkpoints[0].fine_tuned_model_checkpoint).toBe(done.fine_tuned_model);
    expect(checkpoints.every((c) => c.step_number > 0)).toBe(true);

    // The job is one of our runs.
    const runs = await fetch(`${url}/runs`, { headers: { authorization: `Bearer ${client.apiKey}` } });
    const runIds = ((await runs.json()) as { items: { id: string }[] }).items.map((r) => `ftjob-${r.id}`);
    expect(runIds).toContain(job.id);
    const jobs = [];
    for await (const j of client.fineTuning.jobs.list()) jobs.push(j.id);
    expect(jobs).toContain(job.id);

    const preferences = await client.files.create({
      file: await toFile(Buffer.from(DPO), 'dpo.jsonl'),
      purpose: 'fine-tune',
    });
    const dpo = await client.fineTuning.jobs.create({
      model: done.fine_tuned_model as string,
      training_file: preferences.id,
      method: { type: 'dpo', dpo: { hyperparameters: { beta: 0.2, n_epochs: 2, batch_size: 2 } } },
    });
    const dpoDone = await finished(client, dpo.id);
    expect(dpoDone.error).toBeNull();
    expect(dpoDone.status).toBe('succeeded');
    expect(dpoDone.method).toMatchObject({ type: 'dpo', dpo: { hyperparameters: { beta: 0.2 } } });

    // Reinforcement fine-tuning with a string_check grader on a reference field of each prompt row.
    const prompts = await client.files.create({
      file: await toFile(Buffer.from(REINFORCEMENT), 'rft.jsonl'),
      purpose: 'fine-tune',
    });
    const grader = {
      type: 'string_check' as const,
      name: 'Exact answer',
      input: '{{sample.output_text}}',
      reference: '{{item.answer}}',
      operation: 'eq' as const,
    };
    const missing = await client.fineTuning.jobs
      .create({
        model: done.fine_tuned_model as string,
        training_file: prompts.id,
        method: {
          type: 'reinforcement',
          reinforcement: { grader: { ...grader, reference: '{{item.solution}}' } },
        },
      })
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(BadRequestError);
    expect((missing as BadRequestError).param).toBe('training_file'); // its rows lack the field
    expect((missing as BadRequestError).message).toMatch(/solution/);
    const rft = await client.fineTuning.jobs.create({
      model: done.fine_tuned_model as string,
      training_file: prompts.id,
      method: { type: 'reinforcement', reinforcement: { grader, hyperparameters: { batch_size: 2 } } },
    });
    const rftDone = await finished(client, rft.id);
    expect(rftDone.error).toBeNull();
    expect(rftDone.status).toBe('succeeded');
    const stage = await api.app.services.prisma.stage.findFirstOrThrow({
      where: { runId: rft.id.replace('ftjob-', '') },
    });
    expect(stage.config).toMatchObject({
      reward: { type: 'string_check', name: 'exact_answer', reference: '{{item.answer}}' },
    });
    const graded = await api.app.services.prisma.metricPoint.findMany({
      where: { stageId: stage.id, name: 'reward/exact_answer' },
    });
    expect(graded.length).toBeGreaterThan(0);
    // The samples table carries each grader's score.
    const samples = await fetch(`${url}/runs/${stage.runId}/samples`, {
      headers: { authorization: `Bearer ${client.apiKey}` },
    });
    const rows = ((await samples.json()) as { items: { score: number; parts?: Record<string, number> }[] })
      .items;
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(row.parts?.exact_answer).toBe(row.score);
  }, 240_000);

  test('cancel, and every error the client surfaces as its typed error', async () => {
    const training = await client.files.create({
      file: await toFile(Buffer.from(SUPERVISED), 'sft.jsonl'),
      purpose: 'fine-tune',
    });
    const long = await client.fineTuning.jobs.create({
      model: 'tiny-llama',
      training_file: training.id,
      method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 1000, batch_size: 2 } } },
    });
    const cancelled = await client.fineTuning.jobs.cancel(long.id);
    expect(['cancelled', 'running']).toContain(cancelled.status);
    expect((await finished(client, long.id)).status).toBe('cancelled');

    const bad = async (promise: Promise<unknown>) => promise.catch((e: unknown) => e);
    const badEpochs = await bad(
      client.fineTuning.jobs.create({
        model: 'tiny-llama',
        training_file: training.id,
        method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: -1 } } },
      }),
    );
    expect(badEpochs).toBeInstanceOf(BadRequestError);
    expect((badEpochs as BadRequestError).param).toBe('method.supervised.hyperparameters.n_epochs');
    const dpoFile = await client.files.create({
      file: await toFile(Buffer.from(DPO), 'dpo.jsonl'),
      purpose: 'fine-tune',
    });
    const wrongFormat = await bad(
      client.fineTuning.jobs.create({
        model: 'tiny-llama',
        training_file: dpoFile.id,
        method: { type: 'supervised' },
      }),
    );
    expect((wrongFormat as BadRequestError).param).toBe('training_file');
    expect(
      await bad(client.fineTuning.jobs.create({ model: 'no-such-model', training_file: training.id })),
    ).toBeInstanceOf(NotFoundError);
    expect(await bad(other.fineTuning.jobs.retrieve(long.id))).toBeInstanceOf(NotFoundError);
    expect(await bad(other.fineTuning.jobs.cancel(long.id))).toBeInstanceOf(NotFoundError);
    const stranger = new OpenAI({ baseURL: url, apiKey: 'not-a-key-of-anyone-0123456789', maxRetries: 0 });
    expect(await bad(stranger.fineTuning.jobs.list())).toBeInstanceOf(AuthenticationError);
  }, 120_000);
});
