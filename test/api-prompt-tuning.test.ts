// Prompt tuning through the whole service: an SFT stage with `promptTuning`, submitted over HTTP on the tiny
// preset and run by a real worker, leaves PEFT PROMPT_TUNING files in final/adapter/ beside the unchanged base,
// listed as the run's adapter artifacts; `promptTuning` beside `lora` is a 400 naming the field, nothing stored.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stageOf, waitForRun } from '@rlhf/demo';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  PROMPT_EMBEDDINGS,
  presetConfig,
  promptTuningFromFiles,
} from '@rlhf/model';
import { describe, expect, test } from 'vitest';
import { sortDigitsTeam, useTrainingApi } from './worker-helpers.js';

type ListedArtifact = { stageId: string; key: string; sizeBytes: number };

describe('prompt-tuning SFT over HTTP', () => {
  const service = useTrainingApi('prompt-tuning-worker');

  test('final/adapter/ holds the PEFT prompt-tuning files; promptTuning with lora is a 400', async () => {
    const { api } = service;
    const { team, url, client, upload } = await sortDigitsTeam(api);
    const sft = await upload('sft');
    const spec = (config: object) => ({
      model: { preset: 'tiny' },
      stages: [
        {
          kind: 'sft',
          datasetId: sft,
          config: { maxSteps: 4, batchSize: 4, stepsPerCall: 2, evalEvery: 4, lr: 3e-2, ...config },
        },
      ],
    });

    const refused = await fetch(`${url}/v1/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${team.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(spec({ lora: { r: 4 }, promptTuning: { numVirtualTokens: 4 } })),
    });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(await refused.json())).toContain('/stages/0/config/promptTuning');
    // More virtual tokens than the tiny preset has positions (64): 400 naming the field, before anything is stored.
    const tooLong = await fetch(`${url}/v1/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${team.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(spec({ promptTuning: { numVirtualTokens: 64 } })),
    });
    expect(tooLong.status).toBe(400);
    expect(JSON.stringify(await tooLong.json())).toContain('/stages/0/config/promptTuning/numVirtualTokens');
    expect(await api.app.services.prisma.run.count({ where: { teamId: team.team.id } })).toBe(0);

    const run = await waitForRun(
      client,
      (await client.createRun(spec({ promptTuning: { numVirtualTokens: 4 } }))).id,
    );
    expect(run.error).toBeNull();
    expect(run.status).toBe('succeeded');
    const stage = stageOf(run, 'sft');
    const listed = await fetch(`${url}/v1/runs/${run.id}/artifacts?kind=adapter`, {
      headers: { authorization: `Bearer ${team.key}` },
    });
    const adapters = ((await listed.json()) as { items: ListedArtifact[] }).items;
    const names = adapters.filter((a) => a.stageId === stage.id).map((a) => a.key.split('/').at(-1));
    expect(names.sort()).toEqual([ADAPTER_CONFIG, ADAPTER_WEIGHTS].sort());
    const key = (await api.app.services.prisma.stage.findUniqueOrThrow({ where: { id: stage.id } }))
      .modelKey as string;
    const files = {
      [ADAPTER_CONFIG]: new Uint8Array(await readFile(join(api.artifactDir, key, 'adapter', ADAPTER_CONFIG))),
      [ADAPTER_WEIGHTS]: new Uint8Array(
        await readFile(join(api.artifactDir, key, 'adapter', ADAPTER_WEIGHTS)),
      ),
    };
    const tiny = presetConfig('tiny');
    const loaded = promptTuningFromFiles(tiny, files);
    expect(loaded.settings).toEqual({ numVirtualTokens: 4 });
    expect(loaded.adapter.get(PROMPT_EMBEDDINGS)?.length).toBe(4 * tiny.nEmbd);
  }, 300_000);
});
