// A model's own chat template over REST: a tiny Llama with an HF BPE tokenizer and a ChatML template registers,
// an SFT run on a `messages` dataset trains with the template (every assistant turn learned), a template that
// does not parse is refused at upload naming the file, and bad framing settings (an unknown value; 'model' on a
// model without a template) are 400 naming the field.
import { writeTar } from '@rlhf/artifacts';
import { createApiClient, waitForRun } from '@rlhf/demo';
import { hfModelFiles, initParams, presetConfig } from '@rlhf/model';
import { tinyChatTokenizer, tinyChatVocabSize } from '@rlhf/model/testing';
import type { RunningWorker } from '@rlhf/worker';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  baseUrl,
  createTestTeam,
  startApi,
  type TestApi,
  type TestTeam,
  uploadDataset,
} from './api-helpers.js';
import { startTestWorker } from './worker-helpers.js';

const CHAT_ROWS = [
  {
    messages: [
      { role: 'system', content: 'Sort.' },
      { role: 'user', content: '3 1 2' },
      { role: 'assistant', content: '1 2 3' },
      { role: 'user', content: '9 7' },
      { role: 'assistant', content: '7 9' },
    ],
  },
  {
    messages: [
      { role: 'user', content: '2 1' },
      { role: 'assistant', content: '1 2' },
    ],
  },
];

/** A tiny Llama in HF layout whose tokenizer files are the tiny ChatML tokenizer's (chat_template included). */
async function chatModelFiles(): Promise<Record<string, Uint8Array>> {
  const config = presetConfig('tiny-llama', { vocabSize: tinyChatVocabSize('chatml') });
  const files = hfModelFiles(
    { config, params: initParams(config, 5) },
    { tokenizer: await tinyChatTokenizer('chatml') },
  );
  const { 'README.md': _readme, ...rest } = files;
  return rest;
}

describe("a registered model's chat template", () => {
  let api: TestApi;
  let worker: RunningWorker;
  let team: TestTeam;
  const upload = (name: string, files: Record<string, Uint8Array>) =>
    api.app.inject({
      method: 'POST',
      url: `/v1/models?name=${encodeURIComponent(name)}`,
      headers: { ...team.headers, 'content-type': 'application/x-tar' },
      payload: Buffer.from(writeTar(files)),
    });

  beforeAll(async () => {
    api = await startApi();
    team = await createTestTeam(api.app);
    worker = await startTestWorker(api, 'chat-template-worker');
  });
  afterAll(async () => {
    await worker?.close();
    await api?.close();
  });

  test('a template that does not parse is refused at upload, naming the file; nothing is stored', async () => {
    const files = await chatModelFiles();
    const config = JSON.parse(new TextDecoder().decode(files['tokenizer_config.json']));
    const broken = new TextEncoder().encode(
      JSON.stringify({ ...config, chat_template: '{% for m in messages %}{{ m.content }}' }),
    );
    const response = await upload('broken', { ...files, 'tokenizer_config.json': broken });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.message).toMatch(
      /^tokenizer_config\.json chat_template: the chat template does not parse/,
    );
    expect(await api.app.services.prisma.model.count({ where: { teamId: team.team.id } })).toBe(0);
  });

  test('an SFT run on `messages` rows trains with the model template; bad framing is a 400 naming the field', async () => {
    const created = await upload('tiny-chatml', await chatModelFiles());
    expect(created.statusCode, created.body).toBe(201);
    const model = created.json();
    expect(model).toMatchObject({ hasTokenizer: true, hasChatTemplate: true });
    const datasetId = await uploadDataset(api.app, team.headers, 'sft', CHAT_ROWS);

    const bad = await api.app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: team.headers,
      payload: {
        model: { modelId: model.id },
        stages: [{ kind: 'sft', datasetId, config: { framing: { chatTemplate: 'jinja' } } }],
      },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.field).toBe('/stages/0/config/framing/chatTemplate');

    const client = createApiClient(await baseUrl(api.app), team.key);
    const submitted = await client.createRun({
      model: { modelId: model.id },
      stages: [
        {
          kind: 'sft',
          datasetId,
          config: { maxSteps: 3, batchSize: 2, validationFraction: 0, framing: { chatTemplate: 'model' } },
        },
      ],
    });
    const run = await waitForRun(client, submitted.id);
    expect(run.error).toBeNull();
    expect(run.status).toBe('succeeded');
    // What the stage resolved: the template's text alone (ChatML writes no bos and ends turns with <|im_end|>).
    expect(run.hyperparameters.stages.sft?.resolved).toMatchObject({
      effective: {
        framing: {
          chatTemplate: 'model',
          text: { bos: false, eos: true },
          templated: { bos: false, eos: false },
        },
      },
    });

    // The presets' byte tokenizer has no template of its own: asking for it is refused at submission.
    const preset = await api.app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: team.headers,
      payload: {
        model: { preset: 'tiny' },
        stages: [{ kind: 'sft', datasetId, config: { maxSteps: 1, framing: { chatTemplate: 'model' } } }],
      },
    });
    expect(preset.statusCode).toBe(400);
    expect(preset.json().error).toMatchObject({
      field: '/stages/0/config/framing/chatTemplate',
      message: expect.stringMatching(/the run's model has no chat template of its own/),
    });
  }, 120_000);
});
