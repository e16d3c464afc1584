// Registered models: a team uploads a Hugging Face model directory as one tar body, streamed to a temporary
// directory and validated whole there (config, every tensor's name/shape/dtype over one file or the shards,
// tokenizer vs embedding rows) before it is renamed under models/{teamId}/{modelId}/ and recorded. Admin models
// (model-dirs.ts: MODEL_DIRS) have no team, are seen by all and never deleted by one. A run starts from either
// with `model: { modelId }`.
import type { Readable } from 'node:stream';
import type { RegisteredModelView } from '@rlhf/contracts';
import type { Model as ModelRow, Prisma, Team } from '@rlhf/db';
import { hfModelClass } from '@rlhf/model';
import { ApiError, notFound } from './errors.js';
import { uuidv7 } from './ids.js';
import { adapterOnlyFacts } from './model-adapter-upload.js';
import { dropMergedExportAdapter, pointAdapterAtItself } from './model-adapter.js';
import { type Inspected, inspectModel } from './model-inspect.js';
import { type ReceivedModel, receiveModelTar, uploadTooLarge } from './model-upload.js';
import type { Services } from './services.js';
import { isUniqueViolation } from './teams.js';

/** The models a team sees: its own and the admin models (teamId null). */
export const visibleTo = (team: Team) => ({ OR: [{ teamId: team.id }, { teamId: null }] });

/** The row's facts of an inspected model directory. */
export const modelFacts = (facts: Inspected) => ({
  architecture: hfModelClass(facts.config),
  modelType: ('modelType' in facts.config ? facts.config.modelType : undefined) ?? 'gpt2',
  config: facts.config as unknown as Prisma.InputJsonObject,
  parameterCount: BigInt(facts.parameterCount),
  dtype: facts.dtype,
  contextLength: facts.config.maxPositions,
  vocabSize: facts.config.vocabSize,
  hasTokenizer: facts.hasTokenizer,
  hasChatTemplate: facts.hasChatTemplate,
});

/** A whole model directory's facts, read as a worker will (a LoRA stage's model.tar loses its adapter/). */
async function inspectUpload(s: Services, received: ReceivedModel, name: string) {
  const files = new Map<string, Uint8Array>();
  for (const file of received.files.keys()) files.set(file, await s.artifacts.get(`${received.dir}/${file}`));
  const facts = await inspectModel(files, s.artifacts.path(received.dir), name);
  files.clear();
  await dropMergedExportAdapter(s.prisma, s.artifacts, facts.metadata, received);
  return modelFacts(facts);
}

const nameTaken = (name: string) =>
  new ApiError(409, 'conflict', `the team already has a model named ${name}`, 'name');

/**
 * Registers the uploaded archive as a model of the team: streamed into a temporary directory of the store,
 * validated from there (an adapter alone gets its named base's files linked beside it), then renamed into models/{teamId}/{modelId}/; 400 naming the file and tensor (413 over
 * the team's limit), nothing stored.
 */
export async function registerModel(
  s: Services,
  team: Team,
  upload: { name: string; body: Readable; declaredBytes?: number },
): Promise<ModelRow> {
  const limit = Number(team.maxUploadBytes);
  if (upload.declaredBytes !== undefined && upload.declaredBytes > limit) throw uploadTooLarge(limit);
  const received = await receiveModelTar(s.artifacts, upload.body as AsyncIterable<Uint8Array>, limit);
  const id = uuidv7();
  const key = `models/${team.id}/${id}`;
  let committed = false;
  try {
    const facts =
      (await adapterOnlyFacts(s, team, received)) ?? (await inspectUpload(s, received, upload.name));
    await pointAdapterAtItself(s.artifacts, received, key);
    if (
      await s.prisma.model.findFirst({ where: { teamId: team.id, name: upload.name }, select: { id: true } })
    )
      throw nameTaken(upload.name);
    await s.artifacts.move(received.dir, key);
    committed = true;
    return await s.prisma.model.create({
      data: {
        id,
        teamId: team.id,
        name: upload.name,
        key,
        ...facts,
        files: [...received.files].map(([name, file]) => ({ name, ...file })),
        bytes: BigInt(received.bytes),
        sha256: received.sha256,
      },
    });
  } catch (error) {
    await s.artifacts.delete(committed ? key : received.dir).catch(() => {});
    if (isUniqueViolation(error)) throw nameTaken(upload.name);
    throw error;
  }
}

/** The team's models and the admin models, newest first; `cursor` is the last id of the previous page. */
export async function modelPage(s: Services, team: Team, page: { cursor?: string; limit: number }) {
  const rows = await s.prisma.model.findMany({
    where: { ...visibleTo(team), ...(page.cursor ? { id: { lt: page.cursor } } : {}) },
    orderBy: { id: 'desc' },
    take: page.limit + 1,
  });
  const items = rows.slice(0, page.limit);
  return { rows: items, nextCursor: rows.length > page.limit ? items[items.length - 1].id : null };
}

/** One of the team's models or an admin model; 404 for anything else (another team's id included). */
export async function findModel(s: Services, team: Team, modelId: string): Promise<ModelRow> {
  const row = await s.prisma.model.findFirst({ where: { id: modelId, ...visibleTo(team) } });
  if (!row) throw notFound('model', modelId);
  return row;
}

/** Deletes a model no run uses (409 otherwise: a run's stages and resumes read its files). */
export async function deleteModel(s: Services, team: Team, modelId: string): Promise<void> {
  const row = await findModel(s, team, modelId);
  if (row.teamId === null)
    throw new ApiError(403, 'forbidden', `model ${modelId} is an admin model (MODEL_DIRS): read-only`);
  const users = await s.prisma.run.count({ where: { modelId: row.id } });
  if (users > 0) throw new ApiError(409, 'conflict', `model ${modelId} is used by ${users} run(s)`);
  await s.prisma.model.delete({ where: { id: row.id } });
  for (const file of await s.artifacts.list(`${row.key}/`)) await s.artifacts.delete(file).catch(() => {});
}

export function modelView(row: ModelRow): RegisteredModelView {
  return {
    id: row.id,
    teamId: row.teamId,
    name: row.name,
    object: 'model',
    created: Math.floor(row.createdAt.getTime() / 1000),
    owned_by: row.teamId ?? 'system',
    architecture: row.architecture,
    modelType: row.modelType,
    parameterCount: Number(row.parameterCount),
    dtype: row.dtype,
    contextLength: row.contextLength,
    vocabSize: row.vocabSize,
    hasTokenizer: row.hasTokenizer,
    hasChatTemplate: row.hasChatTemplate,
    files: row.files as RegisteredModelView['files'],
    sizeBytes: Number(row.bytes),
    sha256: row.sha256,
    createdAt: row.createdAt.toISOString(),
  };
}
