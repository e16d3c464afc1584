export { checkArtifactDir, checkPostgres, checkRedis } from './checks.js';
export {
  type ApiConfig,
  DEFAULT_ARTIFACT_DIR,
  DEFAULT_REDIS_URL,
  type Env,
  LOG_LEVELS,
  type LogLevel,
  loadApiConfig,
  loadWorkerConfig,
  REPO_ROOT,
  resolveArtifactDir,
  type WorkerConfig,
} from './config.js';
export { MAX_CALL_TOKENS, WORKER_FLOPS_PER_SECOND } from './limits.js';
export { ConfigError, StartupError, UnreachableError } from './errors.js';
export { createLogger, type Logger, redactUrl } from './logger.js';
export { runMain } from './main.js';
