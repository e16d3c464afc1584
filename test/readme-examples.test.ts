// The README's user guide stays true: every dataset row it shows is valid for its kind and used by the stages
// it names, its three-stage pipeline (and the GRPO variant) is accepted by the API as written, with the demo's
// settings, and every default in its settings tables is the schema's.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from '@rlhf/config';
import {
  DATASET_KINDS,
  type DatasetKind,
  datasetRowErrors,
  resolveStageConfig,
  STAGE_DATASET_KINDS,
  type StageKind,
} from '@rlhf/contracts';
import { DEMO_SPEC } from '@rlhf/demo';
import { sortDigitsFiles } from '@rlhf/examples';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestTeam, startApi, type TestApi } from './api-helpers.js';

const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');

/** The text of a README section: from its heading to the next heading of the same or a higher level. */
function section(heading: string): string {
  const start = readme.indexOf(`\n${heading}\n`);
  if (start === -1) throw new Error(`README has no "${heading}"`);
  const level = heading.split(' ')[0];
  const rest = readme.slice(start + heading.length + 2);
  const next = rest.search(new RegExp(`\\n#{1,${level.length}} `));
  return next === -1 ? rest : rest.slice(0, next);
}

/** Rows of the markdown tables in `text`: cells by header name. */
function tableRows(text: string): Record<string, string>[] {
  const rows: Record<string, string>[] = [];
  let header: string[] | null = null;
  for (const line of text.split('\n')) {
    if (!line.startsWith('|')) {
      header = null;
      continue;
    }
    // No cell of these tables holds a '|' of its own.
    const cells = line
      .trim()
      .replace(/^\||\|$/g, '')
      .split('|')
      .map((cell) => cell.trim());
    if (header === null) header = cells;
    else if (!cells.every((cell) => /^-+$/.test(cell)))
      rows.push(Object.fromEntries(header.map((name, i) => [name, cells[i] ?? ''])));
  }
  return rows;
}

const codeSpans = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
const valueAt = (object: unknown, path: string) =>
  path
    .split('.')
    .reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], object);

describe('README: datasets', () => {
  const rows = tableRows(section('### Datasets'));

  test('every row shown is valid for its kind, and the stages named are the ones that take it', () => {
    expect(new Set(rows.map((row) => codeSpans(row.kind)[0]))).toEqual(new Set(DATASET_KINDS));
    for (const row of rows) {
      const kind = codeSpans(row.kind)[0] as DatasetKind;
      const example: unknown = JSON.parse(codeSpans(row['one row'])[0]);
      expect(datasetRowErrors(kind, example), row['one row']).toEqual([]);
      const takers = (Object.keys(STAGE_DATASET_KINDS) as StageKind[]).filter((stage) =>
        STAGE_DATASET_KINDS[stage].includes(kind),
      );
      expect(codeSpans(row['used by']).sort(), kind).toEqual(takers.sort());
    }
  });
});

describe('README: the three-stage pipeline', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(() => api?.close());

  const blocks = [...section('### A three-stage pipeline').matchAll(/```json\n([\s\S]*?)```/g)].map(
    (m) => m[1],
  );

  test('has the demo settings and is accepted as written (and with GRPO as its third stage)', async () => {
    expect(blocks.length).toBe(2);
    const pipeline = JSON.parse(blocks[0]) as {
      stages: { kind: string; datasetId: string; config: object }[];
    };
    const grpo = JSON.parse(blocks[1]) as { kind: string; datasetId: string; config: object };
    expect(pipeline.stages.map((st) => st.kind)).toEqual(['sft', 'reward_model', 'ppo']);
    const [sft, rm, ppo] = pipeline.stages;
    expect(sft.config).toEqual(DEMO_SPEC.sft);
    expect(rm.config).toEqual(DEMO_SPEC.reward_model);
    expect(ppo.config).toEqual(DEMO_SPEC.ppo);

    const { headers } = await createTestTeam(api.app);
    const ids: Record<string, string> = {};
    for (const [kind, file] of [
      ['sft', sortDigitsFiles.sft],
      ['ranked', sortDigitsFiles.ranked],
      ['prompt', sortDigitsFiles.prompt],
    ] as const) {
      const response = await api.app.inject({
        method: 'POST',
        url: `/v1/datasets?name=sort-digits-${kind}&kind=${kind}`,
        headers: { ...headers, 'content-type': 'application/jsonl' },
        payload: await readFile(file),
      });
      expect(response.statusCode, response.body).toBe(201);
      ids[`<${kind} dataset id>`] = response.json().id;
    }
    const withIds = (text: string) =>
      JSON.parse(text.replace(/<[a-z]+ dataset id>/g, (placeholder) => ids[placeholder]));
    const submit = async (body: unknown) =>
      api.app.inject({ method: 'POST', url: '/v1/runs', headers, payload: body as object });
    const accepted = await submit(withIds(blocks[0]));
    expect(accepted.statusCode, accepted.body).toBe(201);
    const variant = withIds(blocks[0]);
    variant.stages[2] = withIds(blocks[1]);
    expect(grpo.kind).toBe('grpo');
    const withGrpo = await submit(variant);
    expect(withGrpo.statusCode, withGrpo.body).toBe(201);
    expect(withGrpo.json().stages.map((st: { kind: string }) => st.kind)).toEqual([
      'sft',
      'reward_model',
      'grpo',
    ]);
  });
});

describe('README: settings per stage', () => {
  const settings = section('### Settings per stage');
  const tables: [string, StageKind[]][] = [
    ['#### `sft` and `reward_model`', ['sft', 'reward_model']],
    ['#### `ppo`', ['ppo']],
    ['#### `grpo`', ['grpo']],
    ['#### `dpo`, `pro`, `raft`', []],
  ];
  const tableOf = (prefix: string) => {
    const start = settings.indexOf(prefix);
    const end = settings.indexOf('\n#### ', start + 1);
    return tableRows(settings.slice(start, end === -1 ? undefined : end));
  };
  const QUALIFIERS: Record<string, StageKind> = { sft: 'sft', rm: 'reward_model' };

  test('every default shown is the schema default, and the demo columns are the demo settings', () => {
    let checked = 0;
    for (const [prefix, kinds] of tables) {
      const rows = tableOf(prefix);
      expect(rows.length, prefix).toBeGreaterThan(3);
      for (const row of rows) {
        const fields = codeSpans(row.field);
        const qualifier = /\((sft|rm)\)/.exec(row.field)?.[1];
        const rowKinds = row.stage
          ? [codeSpans(row.stage)[0] as StageKind]
          : qualifier
            ? [QUALIFIERS[qualifier]]
            : kinds;
        for (const kind of rowKinds) {
          const defaults = resolveStageConfig(kind, {});
          // "sft `3e-4`, rm `1e-4`": a default per stage kind; "`1` / `0.95`": one per field.
          const perKind = [...row.default.matchAll(/(sft|rm) `([^`]+)`/g)];
          const shown =
            perKind.length > 0
              ? perKind.filter((m) => QUALIFIERS[m[1]] === kind).map((m) => m[2])
              : codeSpans(row.default);
          expect(shown.length, `${kind} ${row.field}`).toBe(fields.length);
          fields.forEach((field, i) => {
            expect(valueAt(defaults, field), `${kind} ${field}`).toEqual(JSON.parse(shown[i]));
            checked++;
          });
          const demoColumn = kind === 'reward_model' ? row['demo rm'] : (row['demo sft'] ?? row.demo);
          const demo = codeSpans(demoColumn ?? '');
          const spec = (DEMO_SPEC as unknown as Record<string, object>)[kind];
          if (demo.length > 0)
            for (const [i, field] of fields.entries())
              expect(valueAt(spec, field), `demo ${kind} ${field}`).toEqual(JSON.parse(demo[i]));
        }
      }
    }
    expect(checked).toBeGreaterThan(50);
  });
});
