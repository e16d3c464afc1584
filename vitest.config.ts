import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

// One project per workspace (tests next to the code: src/**/*.test.ts) plus test/ for
// cross-package integration tests. All share the per-run Postgres database (global setup).
const workspaces = ['packages', 'apps'].flatMap((group) =>
  readdirSync(group)
    .filter((name) => existsSync(`${group}/${name}/package.json`))
    .map((name) => `${group}/${name}`),
);

export default defineConfig({
  test: {
    globalSetup: [here('./test/global-setup.ts')],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    projects: [
      ...workspaces.map((dir) => ({
        extends: true as const,
        test: { name: dir.split('/')[1], include: [`${dir}/src/**/*.test.ts`] },
      })),
      { extends: true as const, test: { name: 'examples', include: ['examples/**/*.test.ts'] } },
      { extends: true as const, test: { name: 'integration', include: ['test/**/*.test.ts'] } },
    ],
  },
});
