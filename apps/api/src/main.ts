// The API process: config from the environment, services checked, then listen. SIGTERM/SIGINT close
// the app (SSE streams, event consumer, connections) before exiting.
import {
  checkArtifactDir,
  checkPostgres,
  checkRedis,
  createLogger,
  loadApiConfig,
  runMain,
} from '@rlhf/config';
import { buildApp, LISTEN_BACKLOG } from './app.js';
import { registerModelDirs } from './model-dirs.js';
import { removeStaleUploads } from './model-upload.js';

runMain(async () => {
  const config = loadApiConfig();
  await Promise.all([
    checkPostgres(config.databaseUrl),
    checkRedis(config.redisUrl),
    checkArtifactDir(config.artifactDir),
  ]);
  const logger = createLogger('api', config.logLevel);
  const { redisPrefix, ...rest } = config;
  const app = await buildApp({ ...rest, ...(redisPrefix ? { redisPrefix } : {}), logger });
  logger.info({ artifactDir: config.artifactDir }, 'artifact store');
  const stale = await removeStaleUploads(app.services.artifacts);
  if (stale.length > 0) logger.info({ removed: stale }, 'model uploads left by an earlier API removed');
  if (config.modelDirs.length > 0)
    logger.info({ models: await registerModelDirs(app.services, config.modelDirs) }, 'MODEL_DIRS registered');
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      logger.info({ signal }, 'shutting down');
      app.close().then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
  await app.listen({ host: config.host, port: config.port, backlog: LISTEN_BACKLOG });
});
