// validation_file with the official client against the real server and worker: its rows are the held-out set
// (not a split of the training file), evaluated once an epoch; events and checkpoints show valid_loss (and
// full_valid_loss) like OpenAI's; DPO reports a held-out loss and accuracy; a wrong file is a BadRequestError.
import type { RunningWorker } from '@rlhf/worker';
import OpenAI, { BadRequestError, toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { baseUrl, createTestTeam, jsonl, startApi, type TestApi } from './api-helpers.js';
import { startTestWorker } from './worker-helpers.js';

const sorted = (digits: string) => digits.split(' ').sort().join(' ');
const chat = (list: string[]) =>
  jsonl(
    list.map((digits) => ({
      messages: [
        { role: 'user', content: `sort: ${digits}` },
        { role: 'assistant', content: sorted(digits) },
      ],
    })),
  );
const pairs = (list: string[]) =>
  jsonl(
    list.map((digits) => ({
      input: { messages: [{ role: 'user', content: `sort: ${digits}` }] },
      preferred_output: [{ role: 'assistant', content: sorted(digits) }],
      non_preferred_output: [{ role: 'assistant', content: digits }],
    })),
  );
const TRAIN = ['3 1 2', '9 7', '5 4 6', '8 2', '6 1', '4 3 2'];
const VALID = ['7 5', '2 9 4', '6 3'];

describe('validation_file', () => {
  let api: TestApi;
  let worker: RunningWorker;
  let client: OpenAI;
  let fineTuned = ''; // the supervised job's model: the DPO job starts from it
  beforeAll(async () => {
    api = await startApi();
    worker = await startTestWorker(api, 'validation-worker');
    const team = await createTestTeam(api.app);
    client = new OpenAI({ baseURL: `${await baseUrl(api.app)}/v1`, apiKey: team.key, maxRetries: 0 });
  });
  afterAll(async () => {
    await worker?.close();
    await api?.close();
  });

  const upload = async (content: string, name: string) =>
    (await client.files.create({ file: await toFile(Buffer.from(content), name), purpose: 'fine-tune' })).id;
  async function finished(id: string) {
    for (let i = 0; i < 900; i++) {
      const job = await client.fineTuning.jobs.retrieve(id);
      if (['succeeded', 'failed', 'cancelled'].includes(job.status)) return job;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`job ${id} did not finish`);
  }
  const stageOf = (jobId: string) =>
    api.app.services.prisma.stage.findFirstOrThrow({ where: { runId: jobId.replace('ftjob-', '') } });

  test('supervised: the validation rows are the held-out set, valid_loss every epoch in events and checkpoints', async () => {
    const job = await client.fineTuning.jobs.create({
      model: 'tiny',
      training_file: await upload(chat(TRAIN), 'train.jsonl'),
      validation_file: await upload(chat(VALID), 'valid.jsonl'),
      method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 3, batch_size: 2 } } },
    });
    expect(job.validation_file).toMatch(/^file-/);
    const done = await finished(job.id);
    expect(done.status).toBe('succeeded');
    fineTuned = done.fine_tuned_model as string;
    // All training rows train, all validation rows are held out (no fraction split of the training file).
    const stage = await stageOf(job.id);
    expect((stage.resolved as { effective: Record<string, number> }).effective).toMatchObject({
      trainExamples: TRAIN.length,
      validationExamples: VALID.length,
      totalSteps: 9,
    });
    const checkpoints = await client.fineTuning.jobs.checkpoints.list(job.id);
    // The worker keeps the newest two checkpoints of a stage.
    expect(checkpoints.data.map((c) => c.step_number).sort((a, b) => a - b)).toEqual([6, 9]);
    for (const c of checkpoints.data) {
      expect(Number.isFinite(c.metrics.valid_loss)).toBe(true);
      expect(c.metrics.full_valid_loss).toBe(c.metrics.valid_loss);
      expect(Number.isFinite(c.metrics.train_loss)).toBe(true);
    }
    const events = [];
    for await (const event of client.fineTuning.jobs.listEvents(job.id)) events.push(event);
    const valid = new Map(
      events
        .map((e) => e.data as { step?: number; valid_loss?: number } | null)
        .filter((d) => d?.valid_loss !== undefined)
        .map((d) => [d?.step as number, d?.valid_loss as number]),
    );
    expect([...valid.keys()].sort((a, b) => a - b)).toEqual([3, 6, 9]);
    for (const c of checkpoints.data) expect(c.metrics.valid_loss).toBe(valid.get(c.step_number));
    // The held-out loss falls as the model learns the task.
    expect(valid.get(9)).toBeLessThan(valid.get(3) as number);
  });

  test('dpo: a held-out loss and accuracy on the validation pairs', async () => {
    const job = await client.fineTuning.jobs.create({
      model: fineTuned,
      training_file: await upload(pairs(TRAIN), 'pairs.jsonl'),
      validation_file: await upload(pairs(VALID), 'valid-pairs.jsonl'),
      method: { type: 'dpo', dpo: { hyperparameters: { n_epochs: 2, batch_size: 3 } } },
    });
    expect((await finished(job.id)).status).toBe('succeeded');
    const stage = await stageOf(job.id);
    const points = await api.app.services.prisma.metricPoint.findMany({
      where: { stageId: stage.id, name: { in: ['eval/loss', 'eval/rewards/accuracies'] } },
    });
    const steps = (name: string) =>
      points
        .filter((p) => p.name === name)
        .map((p) => p.step)
        .sort((a, b) => a - b);
    // Before training (step 0), then once an epoch.
    expect(steps('eval/loss')).toEqual([0, 2, 4]);
    expect(steps('eval/rewards/accuracies')).toEqual([0, 2, 4]);
    for (const p of points) expect(Number.isFinite(p.value)).toBe(true);
    const checkpoints = await client.fineTuning.jobs.checkpoints.list(job.id);
    expect(checkpoints.data.every((c) => Number.isFinite(c.metrics.valid_loss))).toBe(true);
  });

  test('a validation file of the wrong format or another team’s is a BadRequestError / 404 naming validation_file', async () => {
    const training = await upload(chat(TRAIN), 'train2.jsonl');
    const wrong = await client.fineTuning.jobs
      .create({
        model: 'tiny',
        training_file: training,
        validation_file: await upload(pairs(VALID), 'p.jsonl'),
      })
      .catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(BadRequestError);
    expect((wrong as BadRequestError).param).toBe('validation_file');
    const missing = await client.fineTuning.jobs
      .create({ model: 'tiny', training_file: training, validation_file: 'file-nope' })
      .catch((e: unknown) => e);
    expect((missing as { status: number; param: string }).status).toBe(404);
    expect((missing as { param: string }).param).toBe('validation_file');
  });
});
