// Bring your own model, end to end over REST (issue 10): a tiny Llama with a Hugging Face BPE tokenizer and a
// ChatML chat template is uploaded, every stage kind runs on it in one run (sft → reward_model → dpo → pro → raft →
// grpo → ppo) with `messages` datasets rendered by the model's own template, and every stage's output downloads as
// one tar of an HF directory that re-imports through POST /v1/models with its tokenizer and template.
import { readTar } from '@rlhf/artifacts';
import { createApiClient, waitForRun } from '@rlhf/demo';
import { hfModelFiles, initParams, type LlamaConfig, presetConfig } from '@rlhf/model';
import { tinyChatTokenizer, tinyChatVocabSize } from '@rlhf/model/testing';
import type { RunningWorker } from '@rlhf/worker';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  baseUrl,
  createTestTeam,
  registerModel,
  startApi,
  type TestApi,
  type TestTeam,
  uploadDataset,
} from './api-helpers.js';
import { startTestWorker } from './worker-helpers.js';

const chat = (user: string, assistant?: string) => [
  { role: 'system', content: 'Sort the digits.' },
  { role: 'user', content: user },
  ...(assistant === undefined ? [] : [{ role: 'assistant', content: assistant }]),
];
const SFT = [
  { messages: chat('3 1 2', '1 2 3') },
  {
    messages: [
      ...chat('9 7', '7 9'),
      { role: 'user', content: 'and 5 4?' },
      { role: 'assistant', content: '4 5' },
    ],
  },
];
const RANKED = [
  { prompt: 'sort: 2 1', responses: ['1 2', '2 1', '21'] },
  { prompt: 'sort: 4 3', responses: ['3 4', '4 3'] },
];
const PROMPTS = [
  { messages: chat('5 4 6'), answer: '4 5 6' },
  { messages: chat('8 2'), answer: '2 8' },
];
const small = { maxSteps: 2, batchSize: 2, stepsPerCall: 1 };
const sampling = { maxNewTokens: 6 };

describe('a tiny Llama with a BPE tokenizer and a chat template through every stage kind over REST', () => {
  let api: TestApi;
  let worker: RunningWorker;
  let team: TestTeam;
  beforeAll(async () => {
    api = await startApi();
    team = await createTestTeam(api.app);
    worker = await startTestWorker(api, 'llama-pipeline-worker');
  });
  afterAll(async () => {
    await worker?.close();
    await api?.close();
  });

  test('runs sft → reward_model → dpo → pro → raft → grpo → ppo; each output re-imports as an HF model', async () => {
    const tokenizer = await tinyChatTokenizer('chatml');
    const config: LlamaConfig = {
      ...(presetConfig('tiny-llama') as LlamaConfig),
      vocabSize: tinyChatVocabSize('chatml'),
    };
    const { 'README.md': _readme, ...files } = hfModelFiles(
      { config, params: initParams(config, 3) },
      { tokenizer },
    );
    const base = await registerModel(api.app, team.headers, 'tiny-chatml-llama', files);
    const uploaded = (
      await api.app.inject({ method: 'GET', url: `/v1/models/${base.id}`, headers: team.headers })
    ).json();
    expect(uploaded).toMatchObject({
      architecture: 'LlamaForCausalLM',
      hasTokenizer: true,
      hasChatTemplate: true,
    });

    const [sft, ranked, prompts] = [
      await uploadDataset(api.app, team.headers, 'sft', SFT),
      await uploadDataset(api.app, team.headers, 'ranked', RANKED),
      await uploadDataset(api.app, team.headers, 'prompt', PROMPTS),
    ];
    const client = createApiClient(await baseUrl(api.app), team.key);
    const submitted = await client.createRun({
      model: { modelId: base.id },
      stages: [
        { kind: 'sft', datasetId: sft, config: { ...small, framing: { chatTemplate: 'model' } } },
        { kind: 'reward_model', datasetId: ranked, config: small },
        { kind: 'dpo', datasetId: ranked, config: small },
        { kind: 'pro', datasetId: ranked, config: small },
        {
          kind: 'raft',
          datasetId: prompts,
          config: {
            iterations: 1,
            promptsPerIteration: 2,
            samplesPerPrompt: 2,
            stepsPerIteration: 1,
            batchSize: 2,
            ...sampling,
          },
        },
        {
          kind: 'grpo',
          datasetId: prompts,
          config: {
            iterations: 1,
            promptsPerIteration: 2,
            groupSize: 2,
            reward: { type: 'string_check', reference: '{{item.answer}}', operation: 'eq' },
            ...sampling,
          },
        },
        { kind: 'ppo', datasetId: prompts, config: { iterations: 1, rolloutBatchSize: 2, ...sampling } },
      ],
    });
    const run = await waitForRun(client, submitted.id);
    expect(run.error).toBeNull();
    expect(run.status).toBe('succeeded');
    expect(run.stages.map((st: { kind: string }) => st.kind)).toEqual([
      'sft',
      'reward_model',
      'dpo',
      'pro',
      'raft',
      'grpo',
      'ppo',
    ]);

    // The prompts the policy sampled from were rendered by the model's ChatML template, not the built-in format.
    const samples = await api.app.inject({
      method: 'GET',
      url: `/v1/runs/${run.id}/samples`,
      headers: team.headers,
    });
    const sampled = samples.json().items as { prompt: string }[];
    expect(sampled.length).toBeGreaterThan(0);
    for (const row of sampled)
      expect(row.prompt).toMatch(
        /^<\|im_start\|>system\nSort the digits\.<\|im_end\|>\n<\|im_start\|>user\n/,
      );

    for (const stage of run.stages as { id: string; kind: string }[]) {
      const download = await api.app.inject({
        method: 'GET',
        url: `/v1/runs/${run.id}/stages/${stage.id}/model.tar`,
        headers: team.headers,
      });
      expect(download.statusCode, `${stage.kind}: ${download.body.slice(0, 200)}`).toBe(200);
      expect(download.headers['content-type']).toBe('application/x-tar');
      const archive = new Uint8Array(download.rawPayload);
      expect(archive.length).toBe(Number(download.headers['content-length']));
      const names = [...readTar(archive).keys()];
      for (const name of [
        'config.json',
        'generation_config.json',
        'model.safetensors',
        'tokenizer.json',
        'tokenizer_config.json',
      ])
        expect(names, `${stage.kind} has ${name}`).toContain(name);
      const config = JSON.parse(new TextDecoder().decode(readTar(archive).get('config.json')));
      expect(config.architectures).toEqual([
        stage.kind === 'reward_model' ? 'LlamaForSequenceClassification' : 'LlamaForCausalLM',
      ]);
      const reimport = await api.app.inject({
        method: 'POST',
        url: `/v1/models?name=${encodeURIComponent(`reimported-${stage.kind}`)}`,
        headers: { ...team.headers, 'content-type': 'application/x-tar' },
        payload: Buffer.from(archive),
      });
      expect(reimport.statusCode, `${stage.kind} re-import: ${reimport.body}`).toBe(201);
      expect(reimport.json()).toMatchObject({
        hasTokenizer: true,
        hasChatTemplate: true,
        vocabSize: config.vocab_size,
      });
    }

    // Another team can neither download a stage nor learn that it exists.
    const other = await createTestTeam(api.app);
    const stolen = await api.app.inject({
      method: 'GET',
      url: `/v1/runs/${run.id}/stages/${run.stages[0].id}/model.tar`,
      headers: other.headers,
    });
    expect(stolen.statusCode).toBe(404);
  }, 300_000);
});
