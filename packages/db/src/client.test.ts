// Every model through the generated client and the pg adapter, on the test run's migrated database.
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, test } from 'vitest';
import { createPrisma } from './client.js';
import { ArtifactKind, DatasetKind, Prisma, RunStatus, StageKind, StageStatus } from './generated/client.js';
import { testDatabaseUrl } from './test-database.js';

const prisma = createPrisma(testDatabaseUrl());
const unique = (name: string) => `${name}-${randomBytes(6).toString('hex')}`;
const sha = () => randomBytes(32).toString('hex');

afterAll(() => prisma.$disconnect());

// A team with one dataset, one run of three stages and output on the last stage.
async function seed() {
  const team = await prisma.team.create({ data: { name: unique('team') } });
  const dataset = await prisma.dataset.create({
    data: {
      teamId: team.id,
      name: 'prompts',
      kind: DatasetKind.prompt,
      sha256: sha(),
      rows: 3,
      bytes: 5_000_000_000n,
    },
  });
  const run = await prisma.run.create({
    data: {
      teamId: team.id,
      name: 'instructgpt',
      spec: { stages: ['sft', 'reward_model', 'ppo'] },
      modelPreset: 'tiny',
      idempotencyKey: unique('key'),
      stages: {
        create: [
          { index: 0, kind: StageKind.sft, config: { steps: 10 } },
          { index: 1, kind: StageKind.reward_model, config: { steps: 10 } },
          {
            index: 2,
            kind: StageKind.ppo,
            config: { iterations: 2 },
            datasetId: dataset.id,
            totalSteps: 2,
            reported: { klCoef: 0.05, clip: 0.2 },
          },
        ],
      },
    },
    include: { stages: { orderBy: { index: 'asc' } } },
  });
  return { team, dataset, run, ppo: run.stages[2] };
}

describe('prisma client over @prisma/adapter-pg', () => {
  test('creates a team with an API key and reads it back by prefix', async () => {
    const team = await prisma.team.create({ data: { name: unique('team'), maxActiveStages: 4 } });
    const prefix = unique('rlhf');
    await prisma.apiKey.create({ data: { teamId: team.id, name: 'ci', prefix, sha256: sha() } });
    const key = await prisma.apiKey.findUnique({ where: { prefix }, include: { team: true } });
    expect(key?.team?.name).toBe(team.name);
    expect(key?.team?.maxActiveStages).toBe(4);
    expect(key?.team?.maxUploadBytes).toBe(104_857_600n);
    expect(key?.team?.requestsPerMinute).toBe(600);
    expect(key?.isAdmin).toBe(false);
    expect(key?.revokedAt).toBeNull();
    const admin = await prisma.apiKey.create({
      data: { name: 'root', prefix: unique('admin'), sha256: sha(), isAdmin: true },
    });
    expect(admin.teamId).toBeNull();
  });

  test('stores a run with its stages, JSON spec, model source and per-stage reported settings', async () => {
    const { run, dataset } = await seed();
    expect(run.status).toBe(RunStatus.queued);
    expect(run.stages.map((stage) => [stage.index, stage.kind, stage.status])).toEqual([
      [0, 'sft', StageStatus.pending],
      [1, 'reward_model', StageStatus.pending],
      [2, 'ppo', StageStatus.pending],
    ]);
    const read = await prisma.run.findUniqueOrThrow({ where: { id: run.id }, include: { stages: true } });
    expect(read.modelPreset).toBe('tiny');
    expect(read.fromRunId).toBeNull();
    expect(read.stages.find((stage) => stage.kind === 'ppo')?.reported).toEqual({ klCoef: 0.05, clip: 0.2 });
    const stored = await prisma.dataset.findUniqueOrThrow({ where: { id: dataset.id } });
    expect(stored.bytes).toBe(5_000_000_000n);
  });

  test('enforces one idempotency key per team and one dataset per name, kind and content per team', async () => {
    const { team, run, dataset } = await seed();
    const duplicateRun = prisma.run.create({
      data: {
        teamId: team.id,
        name: 'again',
        spec: {},
        modelPreset: 'tiny',
        idempotencyKey: run.idempotencyKey,
      },
    });
    await expect(duplicateRun).rejects.toMatchObject({ code: 'P2002' });
    const duplicateDataset = prisma.dataset.create({
      data: {
        teamId: team.id,
        name: dataset.name,
        kind: DatasetKind.prompt,
        sha256: dataset.sha256,
        rows: 1,
        bytes: 1n,
      },
    });
    await expect(duplicateDataset).rejects.toBeInstanceOf(Prisma.PrismaClientKnownRequestError);
    // The same content under another name is another dataset (on the same stored file).
    const renamed = await prisma.dataset.create({
      data: {
        teamId: team.id,
        name: 'renamed',
        kind: DatasetKind.prompt,
        sha256: dataset.sha256,
        rows: 1,
        bytes: 1n,
      },
    });
    expect(renamed.sha256).toBe(dataset.sha256);
    const other = await prisma.team.create({ data: { name: unique('team') } });
    const sameContentOtherTeam = await prisma.dataset.create({
      data: {
        teamId: other.id,
        name: 'same',
        kind: DatasetKind.prompt,
        sha256: dataset.sha256,
        rows: 1,
        bytes: 1n,
      },
    });
    expect(sameContentOtherTeam.sha256).toBe(dataset.sha256);
  });

  test('records artifacts and samples on a stage', async () => {
    const { ppo } = await seed();
    await prisma.artifact.create({
      data: {
        stageId: ppo.id,
        kind: ArtifactKind.checkpoint,
        path: `runs/${ppo.id}/step-2.ckpt`,
        bytes: 10n,
        sha256: sha(),
        step: 2,
      },
    });
    await prisma.sample.create({
      data: { stageId: ppo.id, step: 2, prompt: '2+2=', response: '4', score: 1.5, kl: 0.01 },
    });
    const stage = await prisma.stage.findUniqueOrThrow({
      where: { id: ppo.id },
      include: { artifacts: true, samples: true },
    });
    expect(stage.artifacts.map((artifact) => [artifact.kind, artifact.step])).toEqual([['checkpoint', 2]]);
    expect(stage.samples.map((sample) => [sample.response, sample.score, sample.truncated])).toEqual([
      ['4', 1.5, false],
    ]);
  });

  test('replayed metric points are ignored, so metric ingestion is idempotent', async () => {
    const { ppo } = await seed();
    const points = [
      { stageId: ppo.id, name: 'objective/kl', step: 1, value: 0.02 },
      { stageId: ppo.id, name: 'objective/kl', step: 2, value: 0.03 },
      { stageId: ppo.id, name: 'policy/clipfrac', step: 1, value: 0.1 },
    ];
    expect((await prisma.metricPoint.createMany({ data: points, skipDuplicates: true })).count).toBe(3);
    expect((await prisma.metricPoint.createMany({ data: points, skipDuplicates: true })).count).toBe(0);
    const kl = await prisma.metricPoint.findMany({
      where: { stageId: ppo.id, name: 'objective/kl' },
      orderBy: { step: 'asc' },
    });
    expect(kl.map((point) => [point.step, point.value])).toEqual([
      [1, 0.02],
      [2, 0.03],
    ]);
  });

  test('deleting a dataset keeps the stages that used it', async () => {
    const { dataset, ppo } = await seed();
    await prisma.dataset.delete({ where: { id: dataset.id } });
    const stage = await prisma.stage.findUniqueOrThrow({ where: { id: ppo.id } });
    expect(stage.datasetId).toBeNull();
  });

  test('deleting a team removes its keys, datasets, runs and their output', async () => {
    const { team, dataset, run, ppo } = await seed();
    await prisma.apiKey.create({
      data: { teamId: team.id, name: 'ci', prefix: unique('rlhf'), sha256: sha() },
    });
    await prisma.metricPoint.create({ data: { stageId: ppo.id, name: 'objective/kl', step: 1, value: 0.1 } });
    await prisma.team.delete({ where: { id: team.id } });
    expect(await prisma.apiKey.count({ where: { teamId: team.id } })).toBe(0);
    expect(await prisma.dataset.findUnique({ where: { id: dataset.id } })).toBeNull();
    expect(await prisma.run.findUnique({ where: { id: run.id } })).toBeNull();
    expect(await prisma.stage.count({ where: { runId: run.id } })).toBe(0);
    expect(await prisma.metricPoint.count({ where: { stageId: ppo.id } })).toBe(0);
  });
});
