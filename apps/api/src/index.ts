// @rlhf/api: the REST service (buildApp) and its building blocks other workspaces and tests use.
export { type App, buildApp, LISTEN_BACKLOG } from './app.js';
export {
  authenticate,
  createFailedAuthGuard,
  type FailedAuthGuard,
  type FailedAuthLimits,
  generateApiKey,
  hashKey,
  type Principal,
} from './auth.js';
export { runCli } from './cli.js';
export { ApiError } from './errors.js';
export { applyEvent, redisStartLog, type StartLog } from './events/persist.js';
export { createEventConsumer, type EventConsumer, EVENTS_GROUP } from './events/consumer.js';
export { reconcileStages } from './reconcile.js';
export { admitRuns } from './admission.js';
export type { EvaluationView, LeaderboardView, ResolvedModel } from './evaluations.js';
export type { RunView, StageView } from './schemas.js';
export type { ApiOptions, Services } from './services.js';
export { createApiKey, createTeam, type CreatedKey, findTeam, type TeamLimits } from './teams.js';
