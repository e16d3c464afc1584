// What the OpenAI-compatible serving tests run on: a real API, a stage worker, an inference consumer and a team
// with the official `openai` client.
import type { App } from '@rlhf/api';
import type { RunningInferenceWorker, RunningWorker } from '@rlhf/worker';
import OpenAI from 'openai';
import { baseUrl, createTestTeam, startApi, type TestApi, type TestTeam } from './api-helpers.js';
import { startTestInferenceWorker, startTestWorker } from './worker-helpers.js';

/** The official client on the API's /v1 with this key; no retries, so a test sees every status. */
export async function openAiClient(app: App, apiKey: string): Promise<OpenAI> {
  return new OpenAI({ baseURL: `${await baseUrl(app)}/v1`, apiKey, maxRetries: 0 });
}

export interface Serving {
  api: TestApi;
  worker: RunningWorker;
  inference: RunningInferenceWorker;
  /** A team with a high request rate (the tests send many). */
  team: TestTeam;
  client: OpenAI;
  close(): Promise<void>;
}

/** Starts the service; workers are named `<name>-stage-worker` and `<name>-inference`. */
export async function startServing(
  name: string,
  inferenceOptions: Parameters<typeof startTestInferenceWorker>[2] = {},
): Promise<Serving> {
  const api = await startApi();
  const worker = await startTestWorker(api, `${name}-stage-worker`);
  const inference = await startTestInferenceWorker(api, `${name}-inference`, inferenceOptions);
  const team = await createTestTeam(api.app, { requestsPerMinute: 10_000 });
  return {
    api,
    worker,
    inference,
    team,
    client: await openAiClient(api.app, team.key),
    async close() {
      await inference.close();
      await worker.close();
      await api.close();
    },
  };
}
