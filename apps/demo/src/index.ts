// @rlhf/demo: the demo's client side (also used by the end-to-end tests) and its embedded services.
export { type ApiClient, ApiClientError, createApiClient, stageOf } from './client.js';
export {
  type EmbeddedService,
  freePort,
  MissingRedisError,
  startEmbeddedPostgres,
  startPrivateRedis,
} from './embedded.js';
export { DEMO_SPEC, type DemoSummary, submitDemoRun, summarize, waitForRun } from './pipeline.js';
