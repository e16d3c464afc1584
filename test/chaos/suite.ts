// One chaos suite, two sizes: `npm run test:chaos` (test/chaos/chaos.chaos.ts: ≥ 20 kill trials over every
// stage kind, several trials of every other fault) and test/chaos-fast.test.ts in `npm test` (one trial each,
// short runs). Each fault writes its report (JSON) to `reportPath` and prints it; every report must show
// 0 metrics lost, 0 duplicated, 0 hangs and every run completed.
import { createTestDatabase, type TestDatabase } from '@rlhf/db';
import { describe, expect, inject, test } from 'vitest';
import { diskFault, injectedControl, tmpfsControl, type DiskMode } from './disk.js';
import { type ChaosEnv, type ChaosEnvOptions, createChaosEnv, type StageKind } from './env.js';
import { apiRestart, postgresOutage, redisRestart, workerKills } from './faults.js';
import { type FaultReport, writeReport } from './measure.js';
import {
  canMountTmpfs,
  canRunPostgres,
  hasRedisServer,
  privatePostgres,
  privateRedis,
  tmpfsDisk,
} from './servers.js';

export interface ChaosSettings {
  killTrials: number;
  killKinds: readonly StageKind[];
  outageTrials: number;
  outageKinds: readonly StageKind[];
  downMs: number;
  diskTrials: number;
  runTimeoutMs: number;
  reportPath: string;
  /** Per-test timeout. */
  testTimeoutMs: number;
  /** Stage configs that replace the chaos defaults (the fast suite's shorter stages). */
  configs?: Partial<Record<StageKind, object>>;
}

function expectClean(report: FaultReport): void {
  expect(report.hangs, 'hangs').toBe(0);
  expect(report.runsCompleted, 'runs completed').toBe(report.runs);
  expect(report.metricsLost, 'metrics lost').toBe(0);
  expect(report.stepsWithoutMetrics, 'steps without metrics').toBe(0);
  expect(report.metricsDuplicated, 'metrics duplicated').toBe(0);
  expect(report.recoverMs.each.length, 'recoveries measured').toBe(report.trials);
}

/** One fault's trials on a fresh env: the report is written and must be clean; the hooks release what a test made. */
interface FaultTest<R extends FaultReport> {
  env?: ChaosEnvOptions;
  run(env: ChaosEnv): Promise<R>;
  beforeClose?(env: ChaosEnv): Promise<void> | void;
  afterClose?(): Promise<void> | void;
}

async function cleanReport<R extends FaultReport>(s: ChaosSettings, t: FaultTest<R>): Promise<R> {
  const env = await createChaosEnv({ configs: s.configs, ...t.env });
  try {
    const report = await t.run(env);
    await writeReport(s.reportPath, report);
    expectClean(report);
    return report;
  } finally {
    await t.beforeClose?.(env);
    await env.close();
    await t.afterClose?.();
  }
}

export function chaosSuite(s: ChaosSettings): void {
  const outage = {
    trials: s.outageTrials,
    kinds: s.outageKinds,
    downMs: s.downMs,
    runTimeoutMs: s.runTimeoutMs,
  };
  describe('chaos', () => {
    test(
      `kill -9 of a worker in every stage kind (${s.killTrials} trials)`,
      async () => {
        const report = await cleanReport(s, {
          run: (env) =>
            workerKills(env, { trials: s.killTrials, kinds: s.killKinds, runTimeoutMs: s.runTimeoutMs }),
        });
        expect(report.trials).toBe(s.killTrials);
        expect(report.stepsRedone).toBeGreaterThan(0); // killed past a checkpoint: work was redone
      },
      s.testTimeoutMs,
    );

    test(
      'API restart mid-run',
      async () => {
        await cleanReport(s, { run: (env) => apiRestart(env, outage) });
      },
      s.testTimeoutMs,
    );

    test.runIf(hasRedisServer)(
      'Redis restart mid-run (stream, groups and queue wiped)',
      async () => {
        const redis = await privateRedis();
        await cleanReport(s, {
          env: { api: { redisUrl: redis.url }, redisUrl: redis.url },
          run: (env) => redisRestart(env, redis, outage),
          afterClose: () => redis.close(),
        });
      },
      s.testTimeoutMs,
    );

    test(
      'Postgres restart mid-run',
      async () => {
        const cluster = canRunPostgres() ? await privatePostgres() : null;
        const database: TestDatabase = await createTestDatabase({
          serverUrl: cluster?.serverUrl ?? inject('databaseUrl'),
        });
        let cutting: NodeJS.Timeout | undefined;
        const name = new URL(database.url).pathname.slice(1);
        // Without a cluster of its own the suite cuts every connection to its database for the outage.
        const cut = async () => {
          const { createPrisma } = await import('@rlhf/db');
          const admin = createPrisma(inject('databaseUrl'));
          await admin.$executeRaw`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${name}`;
          await admin.$disconnect();
        };
        const pg = cluster
          ? {
              how: `pg_ctl stop -m immediate (a crash: every connection cut, recovery on start) of the suite's own Postgres cluster mid-stage, pg_ctl start ${s.downMs} ms later`,
              fault: async () => cluster.crash(),
              repair: async () => {
                cluster.start();
              },
            }
          : {
              how: `pg_terminate_backend of every connection to the suite's database every 100 ms for ${s.downMs} ms (no private cluster could be made)`,
              fault: async () => {
                await cut();
                cutting = setInterval(() => void cut().catch(() => {}), 100);
              },
              repair: async () => clearInterval(cutting),
            };
        await cleanReport(s, {
          env: { api: { databaseUrl: database.url } },
          run: (env) => postgresOutage(env, pg.how, pg, outage),
          beforeClose: () => clearInterval(cutting),
          afterClose: async () => {
            await database.drop().catch(() => {});
            cluster?.close();
          },
        });
      },
      s.testTimeoutMs,
    );

    for (const mode of ['full', 'read-only'] as DiskMode[]) {
      test(
        `disk ${mode} during a checkpoint write`,
        async () => {
          const tmpfs = canMountTmpfs();
          let disk: ReturnType<typeof tmpfsDisk> | undefined;
          const report = await cleanReport(s, {
            env: {
              prepareArtifactDir: (dir) => {
                if (tmpfs) disk = tmpfsDisk(dir, '32m');
              },
            },
            run: (env) =>
              diskFault(env, mode, disk ? tmpfsControl(disk, mode) : injectedControl(mode), {
                trials: s.diskTrials,
                downMs: s.downMs,
                runTimeoutMs: s.runTimeoutMs,
                retryDelaysMs: [250, 500, 1000, 2000, 4000, 4000, 4000, 4000],
              }),
            beforeClose: async (env) => {
              await env.closeWorkers();
              disk?.unmount(); // before the API removes its artifact directory
            },
          });
          expect(report.tmpFilesLeft, '.tmp-* files left').toBe(0);
          expect(report.incompleteCheckpointsLeft, 'incomplete checkpoints left').toBe(0);
          expect(report.notes ?? []).toEqual([]);
        },
        s.testTimeoutMs,
      );
    }
  });
}
