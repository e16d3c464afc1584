// Pausing and resuming fine-tuning jobs with the official `openai` client, and runs over our REST API, against
// the real server and a real worker: the running stage checkpoints and parks, makes no progress while paused,
// and after resume continues from that checkpoint to the end, every step's metric reported exactly once.
import type { RunningWorker } from '@rlhf/worker';
import OpenAI, { APIError, toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  baseUrl,
  createTestTeam,
  jsonl,
  SFT_ROWS,
  startApi,
  type TestApi,
  type TestTeam,
  uploadDataset,
  waitFor,
} from './api-helpers.js';
import { startTestWorker } from './worker-helpers.js';

const ROWS = jsonl(
  ['3 1 2', '9 7', '5 4 6', '8 2', '6 1', '4 3 2'].map((digits) => ({
    messages: [
      { role: 'user', content: `sort: ${digits}` },
      { role: 'assistant', content: digits.split(' ').sort().join(' ') },
    ],
  })),
);
const EPOCHS = 80; // 3 steps an epoch: long enough to be caught running
const TOTAL = EPOCHS * 3;

describe('pause and resume', () => {
  let api: TestApi;
  let worker: RunningWorker;
  let client: OpenAI;
  let team: TestTeam;
  beforeAll(async () => {
    api = await startApi();
    worker = await startTestWorker(api, 'pause-worker');
    team = await createTestTeam(api.app);
    client = new OpenAI({ baseURL: `${await baseUrl(api.app)}/v1`, apiKey: team.key, maxRetries: 0 });
  });
  afterAll(async () => {
    await worker?.close();
    await api?.close();
  });

  const runOf = async (runId: string) =>
    (await api.app.inject({ method: 'GET', url: `/v1/runs/${runId}`, headers: team.headers })).json();
  const lossSteps = async (runId: string) => {
    const res = await api.app.inject({
      method: 'GET',
      url: `/v1/runs/${runId}/metrics?name=train/loss&limit=1000`,
      headers: team.headers,
    });
    return (res.json().items as { step: number; time: string }[]).map((p) => p.step);
  };

  test('a paused job checkpoints, waits, and resumes from its checkpoint with no step lost or repeated', async () => {
    const file = await client.files.create({
      file: await toFile(Buffer.from(ROWS), 'sft.jsonl'),
      purpose: 'fine-tune',
    });
    const job = await client.fineTuning.jobs.create({
      model: 'tiny',
      training_file: file.id,
      method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: EPOCHS, batch_size: 2 } } },
    });
    const runId = job.id.replace('ftjob-', '');
    await waitFor(async () => (await lossSteps(runId)).length >= 3, 60_000); // it is training

    const paused = await client.fineTuning.jobs.pause(job.id);
    expect(paused.status).toBe('paused');
    // The worker stops at its next step boundary, checkpoints and parks the job: the stage waits in the queue.
    const parked = await waitFor(async () => {
      const run = await runOf(runId);
      return run.stages[0].status === 'queued' ? run : null;
    }, 30_000);
    expect(parked.status).toBe('paused');
    const at = parked.stages[0].step as number;
    expect(at).toBeGreaterThan(0);
    expect(at).toBeLessThan(TOTAL);
    const checkpoints = await client.fineTuning.jobs.checkpoints.list(job.id);
    expect(checkpoints.data.map((c) => c.step_number)).toContain(at);
    const before = await lossSteps(runId);
    expect(Math.max(...before)).toBe(at);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await lossSteps(runId)).toEqual(before); // nothing runs while paused
    expect((await client.fineTuning.jobs.retrieve(job.id)).status).toBe('paused');

    // Pausing twice, or resuming a job that is not paused, is the client's typed 409.
    const twice = await client.fineTuning.jobs.pause(job.id).catch((e: unknown) => e);
    expect(twice).toBeInstanceOf(APIError);
    expect((twice as APIError).status).toBe(409);

    const resumed = await client.fineTuning.jobs.resume(job.id);
    expect(resumed.status).toBe('running');
    for (let i = 0; i < 600; i++) {
      if ((await client.fineTuning.jobs.retrieve(job.id)).status === 'succeeded') break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect((await client.fineTuning.jobs.retrieve(job.id)).status).toBe('succeeded');
    // Every step's loss once, in order: resumed at the checkpoint, not before it (a repeated step would show
    // as a start before `at`) and not after (a lost one as a gap).
    expect(await lossSteps(runId)).toEqual(Array.from({ length: TOTAL }, (_, i) => i + 1));
    const starts = await api.app.services.prisma.runEvent.findMany({
      where: { runId, type: 'stage.started' },
      orderBy: { seq: 'asc' },
    });
    expect(starts.map((e) => (e.data as { resumedFromStep: number | null }).resumedFromStep)).toEqual([
      null,
      at,
    ]);
    const messages = [];
    for await (const event of client.fineTuning.jobs.listEvents(job.id)) messages.push(event.message);
    expect(messages).toContain('Fine-tuning job paused');
    expect(messages).toContain('Fine-tuning job resumed');
    const resume = await client.fineTuning.jobs.resume(job.id).catch((e: unknown) => e);
    expect((resume as APIError).status).toBe(409);
  });

  test('our runs: a stage paused before a worker takes it is parked when taken; resume, then cancel', async () => {
    const datasetId = await uploadDataset(api.app, team.headers, 'sft', SFT_ROWS);
    const submit = async (name: string) => {
      const create = await api.app.inject({
        method: 'POST',
        url: '/v1/runs',
        headers: team.headers,
        payload: {
          name,
          model: { preset: 'tiny' },
          stages: [{ kind: 'sft', datasetId, config: { epochs: 1000, batchSize: 1 } }],
        },
      });
      expect(create.statusCode, create.body).toBe(201);
      return create.json().id as string;
    };
    const post = (runId: string, action: string) =>
      api.app.inject({ method: 'POST', url: `/v1/runs/${runId}/${action}`, headers: team.headers });
    // The one worker is busy with `first`, so `second` waits in the queue when it is paused.
    const first = await submit('busy');
    await waitFor(async () => (await runOf(first)).stages[0].step > 0, 60_000);
    const second = await submit('waiting');
    const pause = await post(second, 'pause');
    expect(pause.statusCode).toBe(202);
    expect(pause.json().status).toBe('paused');
    expect((await post(first, 'cancel')).statusCode).toBe(202);
    // The worker takes `second` next and parks it before it starts.
    await waitFor(
      () => api.app.services.prisma.runEvent.findFirst({ where: { runId: second, type: 'stage.paused' } }),
      60_000,
    );
    expect(
      await api.app.services.prisma.runEvent.count({ where: { runId: second, type: 'stage.started' } }),
    ).toBe(0);
    expect((await runOf(second)).stages[0]).toMatchObject({ status: 'queued', step: 0 });
    const resume = await post(second, 'resume');
    expect(resume.statusCode).toBe(200);
    expect(['queued', 'running']).toContain(resume.json().status); // queued, unless the worker took it already
    await waitFor(async () => (await runOf(second)).stages[0].step > 0, 60_000);
    expect((await runOf(second)).status).toBe('running');
    // A paused run can be cancelled; a cancelled one is not resumable.
    expect((await post(second, 'pause')).statusCode).toBe(202);
    expect((await post(second, 'cancel')).statusCode).toBe(202);
    await waitFor(async () => (await runOf(second)).status === 'cancelled');
    const again = await post(second, 'resume');
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('run_not_paused');
  });
});
