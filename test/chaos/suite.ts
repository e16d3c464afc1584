// One chaos suite, two sizes: `npm run test:chaos` (test/chaos/chaos.chaos.ts: ≥ 20 kill trials over every
// stage kind, several trials of every other fault) and test/chaos-fast.test.ts in `npm test` (one trial each,
// short runs). Each fault writes its report (JSON) to `reportPath` and prints it; every report must show
// 0 metrics lost, 0 duplicated, 0 hangs and every run completed.
import { createTestDatabase, type TestDatabase } from '@rlhf/db';
import { describe, expect, inject, test } from 'vitest';
import { diskFault, injectedControl, tmpfsControl, type DiskMode } from './disk.js';
import { createChaosEnv, type StageKind } from './env.js';
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

export function chaosSuite(s: ChaosSettings): void {
  describe('chaos', () => {
    test(
      `kill -9 of a worker in every stage kind (${s.killTrials} trials)`,
      async () => {
        const env = await createChaosEnv({ configs: s.configs });
        try {
          const report = await workerKills(env, {
            trials: s.killTrials,
            kinds: s.killKinds,
            runTimeoutMs: s.runTimeoutMs,
          });
          await writeReport(s.reportPath, report);
          expectClean(report);
          expect(report.trials).toBe(s.killTrials);
          expect(report.stepsRedone).toBeGreaterThan(0); // killed past a checkpoint: work was redone
        } finally {
          await env.close();
        }
      },
      s.testTimeoutMs,
    );

    test(
      'API restart mid-run',
      async () => {
        const env = await createChaosEnv({ configs: s.configs });
        try {
          const report = await apiRestart(env, {
            trials: s.outageTrials,
            kinds: s.outageKinds,
            downMs: s.downMs,
            runTimeoutMs: s.runTimeoutMs,
          });
          await writeReport(s.reportPath, report);
          expectClean(report);
        } finally {
          await env.close();
        }
      },
      s.testTimeoutMs,
    );

    test.runIf(hasRedisServer)(
      'Redis restart mid-run (stream, groups and queue wiped)',
      async () => {
        const redis = await privateRedis();
        const env = await createChaosEnv({
          api: { redisUrl: redis.url },
          redisUrl: redis.url,
          configs: s.configs,
        });
        try {
          const report = await redisRestart(env, redis, {
            trials: s.outageTrials,
            kinds: s.outageKinds,
            downMs: s.downMs,
            runTimeoutMs: s.runTimeoutMs,
          });
          await writeReport(s.reportPath, report);
          expectClean(report);
        } finally {
          await env.close();
          await redis.close();
        }
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
        const env = await createChaosEnv({ api: { databaseUrl: database.url }, configs: s.configs });
        let cutting: NodeJS.Timeout | undefined;
        try {
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
          const report = await postgresOutage(env, pg.how, pg, {
            trials: s.outageTrials,
            kinds: s.outageKinds,
            downMs: s.downMs,
            runTimeoutMs: s.runTimeoutMs,
          });
          await writeReport(s.reportPath, report);
          expectClean(report);
        } finally {
          clearInterval(cutting);
          await env.close();
          await database.drop().catch(() => {});
          cluster?.close();
        }
      },
      s.testTimeoutMs,
    );

    for (const mode of ['full', 'read-only'] as DiskMode[]) {
      test(
        `disk ${mode} during a checkpoint write`,
        async () => {
          const tmpfs = canMountTmpfs();
          let disk: ReturnType<typeof tmpfsDisk> | undefined;
          const env = await createChaosEnv({
            configs: s.configs,
            prepareArtifactDir: (dir) => {
              if (tmpfs) disk = tmpfsDisk(dir, '32m');
            },
          });
          try {
            const control = disk ? tmpfsControl(disk, mode) : injectedControl(mode);
            const report = await diskFault(env, mode, control, {
              trials: s.diskTrials,
              downMs: s.downMs,
              runTimeoutMs: s.runTimeoutMs,
              retryDelaysMs: [250, 500, 1000, 2000, 4000, 4000, 4000, 4000],
            });
            await writeReport(s.reportPath, report);
            expectClean(report);
            expect(report.tmpFilesLeft, '.tmp-* files left').toBe(0);
            expect(report.incompleteCheckpointsLeft, 'incomplete checkpoints left').toBe(0);
            expect(report.notes ?? []).toEqual([]);
          } finally {
            await env.closeWorkers();
            disk?.unmount(); // before the API removes its artifact directory
            await env.close();
          }
        },
        s.testTimeoutMs,
      );
    }
  });
}
