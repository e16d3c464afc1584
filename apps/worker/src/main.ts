// Worker process entry: `tsx apps/worker/src/main.ts [--device cuda:0 | --devices 0,1,2,3] ...` (see args.ts).
import { fileURLToPath, pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import {
  checkArtifactDir,
  checkRedis,
  createLogger,
  loadWorkerConfig,
  runMain,
  StartupError,
} from '@rlhf/config';
import { childArgs, parseWorkerArgs, USAGE, type WorkerArgs } from './args.js';
import type { StageRunners } from './context.js';
import { runners as builtInRunners } from './stages.js';
import type { Tasks } from './tasks.js';
import { startEvaluationWorker } from './evaluations.js';
import { startInferenceWorker } from './inference.js';
import { superviseWorkers } from './supervisor.js';
import { startWorker } from './worker.js';

runMain(async () => {
  let args: WorkerArgs;
  try {
    args = parseWorkerArgs(process.argv.slice(2));
  } catch (error) {
    throw new StartupError(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
  }
  const env = args.device === undefined ? process.env : { ...process.env, DEVICE: args.device };
  const config = loadWorkerConfig(env);
  const logger = createLogger('worker', config.logLevel);
  await Promise.all([checkRedis(config.redisUrl), checkArtifactDir(config.artifactDir)]);

  if (args.devices) {
    const supervisor = superviseWorkers({
      devices: args.devices,
      script: fileURLToPath(import.meta.url),
      args: (device) => childArgs(args, device),
      workerId: config.workerId,
      logger,
    });
    onStopSignal(logger, () => supervisor.stop());
    return;
  }

  if (args.inference) {
    const inference = startInferenceWorker({
      redisUrl: config.redisUrl,
      artifactDir: config.artifactDir,
      device: config.device,
      workerId: config.workerId,
      logger,
      prefix: args.prefix ?? config.redisPrefix,
    });
    onStopSignal(logger, async () => (await inference).close());
    await inference;
    return;
  }

  const tasks = args.tasks === undefined ? {} : await loadExport<Tasks>('tasks', args.tasks, 'tasks');
  if (args.evaluations) {
    const evaluations = startEvaluationWorker({
      redisUrl: config.redisUrl,
      artifactDir: config.artifactDir,
      device: config.device,
      tasks,
      logger,
      prefix: args.prefix ?? config.redisPrefix,
      lockDuration: args.lockDuration,
      stalledInterval: args.stalledInterval,
    });
    onStopSignal(logger, async () => (await evaluations).close());
    await evaluations;
    return;
  }

  const runners =
    args.runners === undefined
      ? builtInRunners
      : await loadExport<StageRunners>('runners', args.runners, 'runners');
  // The stop handler is installed before start-up finishes: a SIGTERM while starting still stops gracefully.
  const starting = startWorker({
    redisUrl: config.redisUrl,
    artifactDir: config.artifactDir,
    device: config.device,
    workerId: config.workerId,
    runners,
    tasks,
    logger,
    prefix: args.prefix ?? config.redisPrefix,
    lockDuration: args.lockDuration,
    stalledInterval: args.stalledInterval,
    maxStalledCount: args.maxStalledCount,
    heartbeatIntervalMs: args.heartbeatInterval,
  });
  onStopSignal(logger, async () => (await starting).close());
  await starting;
});

// The first SIGTERM/SIGINT stops gracefully and exits 0; later ones are ignored (under a supervisor a Ctrl-C
// reaches the worker twice), since killing the process during an ORT run would be a crash.
function onStopSignal(logger: ReturnType<typeof createLogger>, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) return logger.warn({ signal }, 'already stopping');
    stopping = true;
    logger.info({ signal }, 'stopping');
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'graceful stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

/** The export `name` of the module at `path` (--runners, --tasks). */
async function loadExport<T>(flag: string, path: string, name: string): Promise<T> {
  const module = (await import(pathToFileURL(resolve(path)).href)) as Record<string, T | undefined>;
  const value = module[name];
  if (!value) throw new StartupError(`--${flag} ${path}: the module exports no '${name}'`);
  return value;
}
