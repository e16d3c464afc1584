// npm run demo [-- --json]: API + a CPU worker (embedded Postgres / private Redis when none is configured),
// the sort-digits datasets uploaded and a full SFT -> RM -> PPO run submitted over the real HTTP API,
// progress bars per stage, then a summary of what the model learned.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildApp, createApiKey, createTeam, type RunView } from '@rlhf/api';
import { checkRedis, createLogger, resolveArtifactDir, runMain, StartupError } from '@rlhf/config';
import { migrate } from '@rlhf/db';
import { tasks } from '@rlhf/examples';
import { runners, startWorker } from '@rlhf/worker';
import { createApiClient } from './client.js';
import {
  type EmbeddedService,
  MissingRedisError,
  startEmbeddedPostgres,
  startPrivateRedis,
} from './embedded.js';
import { type DemoSummary, submitDemoRun, summarize, waitForRun } from './pipeline.js';

const { values: flags } = parseArgs({
  options: { json: { type: 'boolean', default: false }, serve: { type: 'boolean', default: false } },
});
const say = (line: string) => {
  if (!flags.json) process.stdout.write(`${line}\n`);
};

runMain(async () => {
  const started = Date.now();
  const stops: (() => Promise<void>)[] = [];
  // Once, whoever asks first (the end of the run or a signal): what was started last stops first.
  let cleaning: Promise<void> | undefined;
  const cleanUp = () => {
    cleaning ??= (async () => {
      for (const stop of stops.reverse()) await stop().catch(() => {});
    })();
    return cleaning;
  };
  const signalled = stopOnSignals(cleanUp);
  try {
    let databaseUrl = process.env.DATABASE_URL;
    if (!databaseUrl) {
      const pg: EmbeddedService = await startEmbeddedPostgres();
      stops.push(pg.stop);
      databaseUrl = pg.url;
      say('DATABASE_URL not set: using an embedded Postgres (PGlite)');
    }
    let redisUrl = process.env.REDIS_URL;
    if (!redisUrl) {
      try {
        const redis = await startPrivateRedis();
        stops.push(redis.stop);
        redisUrl = redis.url;
        say(`REDIS_URL not set: started a private redis-server at ${redisUrl}`);
      } catch (error) {
        if (error instanceof MissingRedisError) throw new StartupError(error.message);
        throw error;
      }
    } else await checkRedis(redisUrl);
    await migrate(databaseUrl);

    const artifactDir = process.env.ARTIFACT_DIR
      ? resolveArtifactDir(process.env.ARTIFACT_DIR)
      : await mkdtemp(join(tmpdir(), 'rlhf-demo-'));
    if (!process.env.ARTIFACT_DIR) stops.push(() => rm(artifactDir, { recursive: true, force: true }));
    const logger = createLogger('demo', process.env.LOG_LEVEL ?? 'warn');
    // A Redis namespace of its own, so the demo never mixes with a deployment sharing this Redis.
    const prefix = `rlhf-demo-${process.pid}`;
    const app = await buildApp({ databaseUrl, redisUrl, artifactDir, logger, redisPrefix: prefix });
    stops.push(() => app.close());
    const worker = await startWorker({
      redisUrl,
      artifactDir,
      device: process.env.DEVICE ?? 'cpu',
      workerId: `demo-worker-${process.pid}`,
      runners,
      tasks,
      logger,
      prefix,
    });
    stops.push(() => worker.close());
    const address = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
    say(`API listening at ${address} (OpenAPI: ${address}/docs); worker on ${worker.device}`);

    const team = await createTeam(app.services.prisma, `demo-${Date.now()}`);
    const { key } = await createApiKey(app.services.prisma, { teamId: team.id, name: 'demo' });
    const client = createApiClient(address, key);
    const submitted = await submitDemoRun(client);
    say(`run ${submitted.id} submitted: sft -> reward_model -> ppo`);
    const run = await waitForRun(client, submitted.id, flags.json ? undefined : progressBars());
    const summary = await summarize(client, run, (Date.now() - started) / 1000);
    if (flags.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else printSummary(summary);
    if (run.status !== 'succeeded') throw new StartupError(`run ${run.id} ${run.status}: ${run.error ?? ''}`);
    if (flags.serve) {
      // The key goes in the URL fragment, which never reaches the server; the page moves it to localStorage.
      say(`dashboard: ${address}/dashboard#key=${key} (Ctrl-C to stop)`);
      await new Promise(() => {}); // until SIGINT/SIGTERM: stopOnSignals cleans up and exits
    } else
      say('dashboard: `npm run demo -- --serve` keeps the API up after the run and prints the dashboard URL');
  } catch (error) {
    // Stopping by a signal makes the run's requests fail: the signal handler exits, not this error.
    if (signalled()) await new Promise(() => {});
    throw error;
  } finally {
    await cleanUp();
  }
});

/**
 * SIGTERM/SIGINT stop the worker (it checkpoints), the API, the private redis-server and the embedded
 * Postgres, remove the temporary files, then exit 128 + the signal number; a second signal exits at once
 * (the private redis-server is still killed on exit, see startPrivateRedis).
 */
function stopOnSignals(cleanUp: () => Promise<void>): () => boolean {
  let stopping = false;
  for (const [signal, code] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const) {
    process.on(signal, () => {
      if (stopping) process.exit(code);
      stopping = true;
      process.stderr.write(`${signal}: stopping the demo (again to stop at once)\n`);
      void cleanUp().finally(() => process.exit(code));
    });
  }
  return () => stopping;
}

/** One line per stage, redrawn in place on a terminal (a line per change elsewhere). */
function progressBars(): (run: RunView) => void {
  const tty = process.stdout.isTTY;
  let drawn = 0;
  let last = '';
  return (run) => {
    const lines = run.stages.map((stage) => {
      const width = 30;
      const filled = Math.round(stage.progress * width);
      const steps = stage.totalSteps ? `${stage.step}/${stage.totalSteps}` : `${stage.step}`;
      return `${stage.kind.padEnd(12)} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(
        Math.round(stage.progress * 100),
      ).padStart(3)}% ${steps.padEnd(9)} ${stage.status}`;
    });
    const text = lines.join('\n');
    if (text === last) return;
    last = text;
    if (tty && drawn > 0) process.stdout.write(`\x1b[${drawn}A\x1b[0J`);
    process.stdout.write(`${text}\n`);
    drawn = lines.length;
  };
}

function printSummary(s: DemoSummary): void {
  const f = (x: number | null, digits = 3) => (x === null ? 'n/a' : x.toFixed(digits));
  say('');
  say(`summary (run ${s.runId}, ${s.status}, ${s.seconds} s)`);
  say(`  SFT held-out loss          ${f(s.sft.evalLossBefore)} -> ${f(s.sft.evalLossAfter)}`);
  say(`  RM held-out pair accuracy  ${f(s.rewardModel.evalAccuracy)}`);
  say(`  PPO ground-truth reward    ${f(s.ppo.groundTruthBefore)} -> ${f(s.ppo.groundTruthAfter)}`);
  say(`  PPO reward-model score     ${f(s.ppo.scoreBefore)} -> ${f(s.ppo.scoreAfter)}`);
  say(`  PPO final KL to reference  ${f(s.ppo.finalKl)}`);
  say(`  rollout samples stored     ${s.samples}`);
}
