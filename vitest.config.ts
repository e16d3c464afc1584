import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

// One project per workspace (tests next to the code: src/**/*.test.ts) plus test/ for
// cross-package integration tests.
const workspaces = ['packages', 'apps'].flatMap((group) =>
  readdirSync(group)
    .filter((name) => existsSync(`${group}/${name}/package.json`))
    .map((name) => `${group}/${name}`),
);

// The projects whose tests reach Redis or Postgres. Only they run the global setup, which checks both
// services, creates this run's database and provides its URL (inject('databaseUrl'), inject('redisUrl'),
// process.env.TEST_DATABASE_URL); they share that one database. Every other project (graph maths,
// models, schemas, ONNX Runtime) starts with no services. A new test that needs them belongs in one of
// these projects, or its project belongs in this list.
const needsServices = new Set(['api', 'worker', 'db', 'queue', 'config', 'integration']);
const services = (name: string) =>
  needsServices.has(name) ? { globalSetup: [here('./test/global-setup.ts')] } : {};

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    projects: [
      ...workspaces.map((dir) => {
        const name = dir.split('/')[1];
        return {
          extends: true as const,
          test: { name, include: [`${dir}/src/**/*.test.ts`], ...services(name) },
        };
      }),
      { extends: true as const, test: { name: 'examples', include: ['examples/**/*.test.ts'] } },
      {
        extends: true as const,
        test: { name: 'integration', include: ['test/**/*.test.ts'], ...services('integration') },
      },
    ],
  },
});
