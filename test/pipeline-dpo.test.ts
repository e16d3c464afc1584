// A DPO stage and a GRPO stage after it through the whole service: submitted over HTTP after SFT, run by a real worker on the ranked
// sort-digits lists, its metrics, exported policy and held-out implicit-reward accuracy recorded; /generate
// samples from it by default; a bad β is refused with 400 naming the field before anything is stored.
import { join } from 'node:path';
import { DpoMetrics } from '@rlhf/contracts';
import { stageOf, waitForRun } from '@rlhf/demo';
import { loadCheckpoint, loadHfModel } from '@rlhf/model';
import { describe, expect, test } from 'vitest';
import { sortDigitsTeam, useTrainingApi } from './worker-helpers.js';

describe('sft -> dpo over HTTP', () => {
  const service = useTrainingApi('dpo-worker');

  test('a DPO stage runs after SFT, learns to rank held-out pairs, and its policy serves /generate', async () => {
    const { api } = service;
    const { team, url, client, upload } = await sortDigitsTeam(api);
    const sft = await upload('sft');
    const ranked = await upload('ranked');
    const prompts = await upload('prompt');
    const spec = (dpoConfig: object) => ({
      model: { preset: 'tiny' },
      stages: [
        { kind: 'sft', datasetId: sft, config: { maxSteps: 300, batchSize: 32, lr: 3e-3, stepsPerCall: 20 } },
        { kind: 'dpo', datasetId: ranked, config: dpoConfig },
        // GRPO from the DPO policy, rewarded by the task the worker registered (no reward model in this run).
        {
          kind: 'grpo',
          datasetId: prompts,
          config: {
            reward: 'sort-digits',
            iterations: 3,
            promptsPerIteration: 8,
            groupSize: 4,
            maxNewTokens: 12,
            lr: 1e-4,
          },
        },
      ],
    });

    const refused = await fetch(`${url}/v1/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${team.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(spec({ beta: 0 })),
    });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(await refused.json())).toContain('/stages/1/config/beta');

    const submitted = await client.createRun(
      spec({ maxSteps: 100, batchSize: 16, lr: 2e-4, beta: 1, stepsPerCall: 10, evalEvery: 50 }),
    );
    const run = await waitForRun(client, submitted.id);
    expect(run.error).toBeNull();
    expect(run.status).toBe('succeeded');
    const dpo = stageOf(run, 'dpo');
    const metrics = await client.metrics(run.id, { stageId: dpo.id });
    const series = (name: string) => metrics.filter((m) => m.name === name).map((m) => m.value);
    for (const name of [DpoMetrics.loss, DpoMetrics.rewardsAccuracies, DpoMetrics.rewardsMargins])
      expect(series(name).length, name).toBe(100);
    // Held-out implicit-reward accuracy before training (policy = reference: no margins) and after.
    const accuracy = series(DpoMetrics.evalRewardsAccuracies);
    expect(accuracy.length).toBeGreaterThanOrEqual(3); // steps 0, 50, 100
    expect(accuracy.at(-1)!).toBeGreaterThan(0.8);
    expect(accuracy.at(-1)!).toBeGreaterThan(accuracy[0]);

    const headers = { authorization: `Bearer ${team.key}` };
    const artifacts = (await (await fetch(`${url}/v1/runs/${run.id}/artifacts`, { headers })).json()) as {
      items: { key: string; stageId: string }[];
    };
    expect(artifacts.items.some((a) => a.stageId === dpo.id && a.key.endsWith('/final/policy.onnx'))).toBe(
      true,
    );
    // The same model as a Hugging Face directory: it loads back with its byte tokenizer, weights unchanged.
    const weights = artifacts.items.find(
      (a) => a.stageId === dpo.id && a.key.endsWith('/final/model.safetensors'),
    );
    const dir = join(api.artifactDir, weights!.key.slice(0, -'/model.safetensors'.length));
    for (const file of ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json'])
      expect(
        artifacts.items.some((a) => a.key.endsWith(`/final/hf/${file}`)),
        file,
      ).toBe(true);
    const [ours, hf] = [await loadCheckpoint(dir), await loadHfModel(join(dir, 'hf'))];
    expect(hf.config).toEqual(ours.config);
    expect(hf.params.get('wte.weight')).toEqual(ours.params.get('wte.weight'));
    expect(hf.tokenizer.encode('sort 3 1 2:')).toEqual(ours.tokenizer.encode('sort 3 1 2:'));
    const generated = await fetch(`${url}/v1/runs/${run.id}/generate`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ prompts: ['sort 3 1 2:'], maxNewTokens: 12, temperature: 0.01 }),
    });
    expect(generated.status).toBe(200);
    const grpo = stageOf(run, 'grpo');
    expect(await generated.json()).toMatchObject({ stageId: grpo.id });
    const grpoRewards = (await client.metrics(run.id, { stageId: grpo.id, name: 'reward' })).map(
      (m) => m.value,
    );
    expect(grpoRewards).toHaveLength(3);
    // Best of n needs a reward model to rank with; this run has none.
    const bestOf = await fetch(`${url}/v1/runs/${run.id}/generate`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ prompts: ['sort 3 1 2:'], bestOf: 4 }),
    });
    expect(bestOf.status).toBe(409);
    expect(await bestOf.json()).toMatchObject({ error: { code: 'no_reward_model' } });
  }, 600_000);
});
