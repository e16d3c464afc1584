import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// `npm run test:chaos`: the long chaos suite (test/chaos/*.chaos.ts), apart from `npm test`. Faults run one
// after another (they kill processes and fill disks); the global setup checks Redis and Postgres.
export default defineConfig({
  test: {
    name: 'chaos',
    include: ['test/chaos/**/*.chaos.ts'],
    globalSetup: [fileURLToPath(new URL('./test/global-setup.ts', import.meta.url))],
    fileParallelism: false,
    testTimeout: 3_600_000,
    hookTimeout: 120_000,
  },
});
