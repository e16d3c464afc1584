// LoRA on the ranked stages through the whole service: a reward model and a DPO stage with `lora`, submitted over
// HTTP after SFT on the tiny preset, run by a real worker; each keeps its PEFT adapter beside the merged model and
// the API lists the adapter files with the run's artifacts. A target module the architecture lacks is a 400
// naming the field, before anything is stored.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stageOf, waitForRun } from '@rlhf/demo';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, loadHfModel } from '@rlhf/model';
import { describe, expect, test } from 'vitest';
import { sortDigitsTeam, useTrainingApi } from './worker-helpers.js';

type ListedArtifact = { stageId: string; key: string; sizeBytes: number };

describe('LoRA reward model and DPO over HTTP', () => {
  const service = useTrainingApi('lora-worker');

  test('both stages keep a PEFT adapter, listed as adapter artifacts; a bad target module is a 400', async () => {
    const { api } = service;
    const { team, url, client, upload } = await sortDigitsTeam(api);
    const sft = await upload('sft');
    const ranked = await upload('ranked');
    const short = { maxSteps: 4, batchSize: 4, stepsPerCall: 2, evalEvery: 4 };
    const spec = (rmLora: object) => ({
      model: { preset: 'tiny' },
      stages: [
        { kind: 'sft', datasetId: sft, config: { ...short, lr: 3e-3 } },
        { kind: 'reward_model', datasetId: ranked, config: { ...short, lr: 5e-3, lora: rmLora } },
        {
          kind: 'dpo',
          datasetId: ranked,
          config: { ...short, lr: 2e-3, lora: { r: 4, targetModules: ['c_attn', 'c_fc'] } },
        },
      ],
    });

    // GPT-2 has no q_proj: refused at submission, naming the field; no run is stored.
    const refused = await fetch(`${url}/v1/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${team.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(spec({ r: 4, targetModules: ['q_proj'] })),
    });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(await refused.json())).toContain('/stages/1/config/lora/targetModules');
    expect(await api.app.services.prisma.run.count({ where: { teamId: team.team.id } })).toBe(0);

    const submitted = await client.createRun(spec({ r: 4 }));
    const run = await waitForRun(client, submitted.id);
    expect(run.error).toBeNull();
    expect(run.status).toBe('succeeded');

    const listed = await fetch(`${url}/v1/runs/${run.id}/artifacts?kind=adapter`, {
      headers: { authorization: `Bearer ${team.key}` },
    });
    expect(listed.status).toBe(200);
    const adapters = ((await listed.json()) as { items: ListedArtifact[] }).items;
    for (const kind of ['reward_model', 'dpo'] as const) {
      const stage = stageOf(run, kind);
      const files = adapters.filter((a) => a.stageId === stage.id).map((a) => a.key.split('/').at(-1));
      expect(files.sort(), kind).toEqual([ADAPTER_CONFIG, ADAPTER_WEIGHTS].sort());
      const key = (await api.app.services.prisma.stage.findUniqueOrThrow({ where: { id: stage.id } }))
        .modelKey as string;
      const config = JSON.parse(
        await readFile(join(api.artifactDir, key, 'adapter', ADAPTER_CONFIG), 'utf8'),
      );
      expect(config).toMatchObject({
        peft_type: 'LORA',
        r: 4,
        task_type: kind === 'reward_model' ? 'SEQ_CLS' : 'CAUSAL_LM',
        modules_to_save: kind === 'reward_model' ? ['score'] : null,
      });
      // The merged model beside it is a plain HF checkpoint (no adapter tensors), as later stages load it.
      const merged = await loadHfModel(join(api.artifactDir, key, 'hf'));
      expect([...merged.params.keys()].some((name) => name.includes('lora_'))).toBe(false);
    }
    // The adapter is small next to the model it adapts.
    const dpoStage = stageOf(run, 'dpo');
    const weights = await fetch(`${url}/v1/runs/${run.id}/artifacts?stageId=${dpoStage.id}&kind=model`, {
      headers: { authorization: `Bearer ${team.key}` },
    });
    const model = ((await weights.json()) as { items: ListedArtifact[] }).items.find((a) =>
      a.key.endsWith('/final/model.safetensors'),
    );
    const adapter = adapters.find((a) => a.stageId === dpoStage.id && a.key.endsWith(ADAPTER_WEIGHTS));
    expect(adapter!.sizeBytes).toBeLessThan(model!.sizeBytes / 3);
  }, 300_000);
});
