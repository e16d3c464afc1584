// The chaos suite (`npm run test:chaos`): kill -9 of a worker in every stage kind (CHAOS_KILL_TRIALS, default
// 21: three per kind), then CHAOS_TRIALS (default 3) trials of an API restart, a Redis restart, a Postgres
// restart, a full disk and a read-only disk. Reports: CHAOS_REPORT (default test-results/chaos-report.json).
import { ALL_KINDS } from './env.js';
import { chaosSuite } from './suite.js';

const count = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a whole number >= 1`);
  return value;
};

chaosSuite({
  killTrials: count('CHAOS_KILL_TRIALS', 21),
  killKinds: ALL_KINDS,
  outageTrials: count('CHAOS_TRIALS', 3),
  outageKinds: ['sft', 'reward_model'],
  downMs: count('CHAOS_DOWN_MS', 3000),
  diskTrials: count('CHAOS_TRIALS', 3),
  runTimeoutMs: 900_000,
  reportPath: process.env.CHAOS_REPORT ?? 'test-results/chaos-report.json',
  testTimeoutMs: 3_600_000,
});
