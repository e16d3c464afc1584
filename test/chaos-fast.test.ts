// The chaos suite's fast version in `npm test`: one trial of each fault (worker kill -9, API restart, Redis
// restart, Postgres restart, full and read-only disk) on one short SFT stage; `npm run test:chaos` is the long one.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chaosSuite } from './chaos/suite.js';

chaosSuite({
  killTrials: 1,
  killKinds: ['sft'],
  outageTrials: 1,
  outageKinds: ['sft'],
  downMs: 1000,
  diskTrials: 1,
  runTimeoutMs: 120_000,
  reportPath: join(tmpdir(), `chaos-fast-${process.pid}.json`),
  testTimeoutMs: 180_000,
  configs: { sft: { maxSteps: 60, checkpointEvery: 10 } },
});
