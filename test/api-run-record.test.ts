// The run record (issue 9): model source in Run columns, each stage's reported and resolved settings
// in its own Stage row, so events of different stages persisted at the same time lose nothing.
import { applyEvent } from '@rlhf/api';
import { keys, type StageEvent } from '@rlhf/queue';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestTeam, pipelineSpec, startApi, type TestApi } from './api-helpers.js';

let api: TestApi;
beforeAll(async () => {
  api = await startApi({ consumeEvents: false });
});
afterAll(() => api?.close());

describe('run record', () => {
  test("two stages' events persisted concurrently both land in the record", async () => {
    const { headers } = await createTestTeam(api.app, { maxActiveStages: 10 });
    const spec = await pipelineSpec(api.app, headers);
    const { artifacts } = api.app.services;
    const apply = (event: StageEvent) => applyEvent(api.app.services, event, new Date());
    for (let trial = 0; trial < 5; trial++) {
      const response = await api.app.inject({ method: 'POST', url: '/v1/runs', headers, payload: spec });
      const run: { id: string; stages: { id: string; kind: 'sft' | 'reward_model' | 'ppo' }[] } =
        response.json();
      const [sft, rm] = run.stages;
      const startedEvent = (stage: (typeof run.stages)[number], vocabSize: number): StageEvent => ({
        type: 'stage.started',
        runId: run.id,
        stageId: stage.id,
        workerId: `w-${stage.kind}`,
        attempt: 1,
        resumedFromStep: null,
        totalSteps: 10,
        hyperparameters: { vocabSize },
      });
      await Promise.all([apply(startedEvent(sft, 260)), apply(startedEvent(rm, 261))]);
      const completedEvent = async (stage: (typeof run.stages)[number], maxSeqLen: number) => {
        const modelKey = keys.finalDir(run.id, stage.id);
        await artifacts.put(keys.hyperparameters(modelKey), JSON.stringify({ maxSeqLen }));
        return {
          type: 'stage.completed',
          runId: run.id,
          stageId: stage.id,
          result: { stageId: stage.id, kind: stage.kind, modelKey, step: 10 },
        } satisfies StageEvent;
      };
      const events = await Promise.all([completedEvent(sft, 64), completedEvent(rm, 63)]);
      await Promise.all(events.map(apply));

      const view = (await api.app.inject({ method: 'GET', url: `/v1/runs/${run.id}`, headers })).json();
      expect(view.hyperparameters.modelPreset).toBe('tiny');
      expect(view.hyperparameters.stages.sft).toMatchObject({
        maxSteps: 10,
        vocabSize: 260,
        resolved: { maxSeqLen: 64 },
      });
      expect(view.hyperparameters.stages.reward_model).toMatchObject({
        vocabSize: 261,
        resolved: { maxSeqLen: 63 },
      });
      expect(view.hyperparameters.stages.ppo).toMatchObject({ iterations: 3 });
      expect(view.hyperparameters.stages.ppo.resolved).toBeUndefined();
      expect(view.startedAt).not.toBeNull();
    }
  });

  test('OpenAPI documents the record, not an untyped object', async () => {
    const docs = (await api.app.inject({ method: 'GET', url: '/docs/json' })).json();
    const json = JSON.stringify(docs);
    expect(json).toContain('the sft stage');
    expect(json).toContain('modelPreset');
  });
});
