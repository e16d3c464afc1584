// Registered models: a team uploads a Hugging Face model directory as one tar body; it is validated whole
// (config, every tensor's name/shape/dtype, tokenizer vs embedding rows) before anything is stored, then kept
// under models/{teamId}/{modelId}/ and recorded. A run starts from one with `model: { modelId }`.
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { readTar, TarError } from '@rlhf/artifacts';
import type { RegisteredModelView } from '@rlhf/contracts';
import type { Model as ModelRow, Prisma, Team } from '@rlhf/db';
import {
  CheckpointError,
  checkpointFromFiles,
  type GptConfig,
  hfModelClass,
  loadHfTokenizer,
  readSafetensors,
} from '@rlhf/model';
import { ApiError, notFound } from './errors.js';
import { uuidv7 } from './ids.js';
import type { Services } from './services.js';
import { isUniqueViolation } from './teams.js';

const REQUIRED = ['config.json', 'model.safetensors'] as const;
/** The files of an HF model directory we keep; anything else in the archive is refused by name. */
const ACCEPTED = new Set<string>([
  ...REQUIRED,
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
  'vocab.json',
  'merges.txt',
  'README.md',
]);

const invalidModel = (message: string, file?: string) => new ApiError(400, 'invalid_model', message, file);

/** The archive's files; a single top directory (`tar cf m.tar mymodel/`) is stripped. */
function modelFiles(archive: Uint8Array): Map<string, Uint8Array> {
  let files: Map<string, Uint8Array>;
  try {
    files = readTar(archive);
  } catch (error) {
    if (error instanceof TarError) throw invalidModel(`not a valid tar archive: ${error.message}`);
    throw error;
  }
  const tops = new Set([...files.keys()].map((path) => (path.includes('/') ? path.split('/')[0] : '')));
  const [top] = tops;
  const prefix = tops.size === 1 && top !== '' ? `${top}/` : '';
  const out = new Map<string, Uint8Array>();
  for (const [path, data] of files) {
    const name = path.slice(prefix.length);
    if (name.endsWith('.safetensors') && name !== 'model.safetensors')
      throw invalidModel(
        `${name}: sharded checkpoints are not supported yet (upload one model.safetensors)`,
        name,
      );
    if (!ACCEPTED.has(name))
      throw invalidModel(
        `${name}: not a file of a model directory (accepted: ${[...ACCEPTED].join(', ')})`,
        name,
      );
    out.set(name, data);
  }
  for (const name of REQUIRED) if (!out.has(name)) throw invalidModel(`missing ${name}`, name);
  return out;
}

interface Inspected {
  config: GptConfig;
  parameterCount: number;
  dtype: string;
  hasTokenizer: boolean;
  hasChatTemplate: boolean;
}

/** The small files: JSON objects (generation_config.json, …) and UTF-8 text (merges.txt, the template). */
function checkSmallFiles(files: Map<string, Uint8Array>): void {
  for (const [file, data] of files) {
    if (file.endsWith('.safetensors')) continue;
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(data);
    } catch {
      throw invalidModel(`${file}: not UTF-8 text`, file);
    }
    if (!file.endsWith('.json')) continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw invalidModel(`${file}: invalid JSON: ${(error as Error).message}`, file);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw invalidModel(`${file}: must be a JSON object`, file);
  }
}

/** Loads what a worker will load, so a model that registers is one a stage can start from. */
async function inspect(files: Map<string, Uint8Array>, name: string): Promise<Inspected> {
  checkSmallFiles(files);
  let config: GptConfig;
  let params: Map<string, Float32Array>;
  try {
    ({ config, params } = checkpointFromFiles(
      {
        'config.json': files.get('config.json') as Uint8Array,
        'model.safetensors': files.get('model.safetensors') as Uint8Array,
      },
      name,
    ));
  } catch (error) {
    if (!(error instanceof CheckpointError)) throw error;
    const file = error.message.includes('config.json') ? 'config.json' : 'model.safetensors';
    throw invalidModel(error.message, file);
  }
  const dtypes = new Set(
    [...readSafetensors(files.get('model.safetensors') as Uint8Array).tensors.values()].map((t) => t.dtype),
  );
  let hasChatTemplate = false;
  const hasTokenizer = files.has('tokenizer.json');
  if (hasTokenizer) {
    const dir = await mkdtemp(join(tmpdir(), 'rlhf-model-'));
    try {
      for (const [file, data] of files)
        if (!file.endsWith('.safetensors')) await writeFile(join(dir, file), data);
      const tokenizer = await loadHfTokenizer(dir).catch((error: Error) => {
        throw invalidModel(`tokenizer.json: ${error.message}`, 'tokenizer.json');
      });
      if (tokenizer.vocabSize > config.vocabSize)
        throw invalidModel(
          `tokenizer.json has ${tokenizer.vocabSize} tokens but the embedding has ${config.vocabSize} rows (vocab_size)`,
          'tokenizer.json',
        );
      hasChatTemplate = tokenizer.hfFiles?.chatTemplate !== undefined;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  let parameterCount = 0;
  for (const values of params.values()) parameterCount += values.length;
  return { config, parameterCount, dtype: [...dtypes].sort().join('+'), hasTokenizer, hasChatTemplate };
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** Registers the uploaded archive as a model of the team; 400 naming the file and tensor, nothing stored. */
export async function registerModel(
  s: Services,
  team: Team,
  upload: { name: string; body: Readable; declaredBytes?: number },
): Promise<ModelRow> {
  const limit = Number(team.maxUploadBytes);
  const tooLarge = () =>
    new ApiError(413, 'payload_too_large', `upload larger than the team's limit of ${limit} bytes`);
  if (upload.declaredBytes !== undefined && upload.declaredBytes > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of upload.body as AsyncIterable<Buffer>) {
    bytes += chunk.byteLength;
    if (bytes > limit) throw tooLarge();
    chunks.push(chunk);
  }
  const archive = new Uint8Array(Buffer.concat(chunks));
  const files = modelFiles(archive);
  const facts = await inspect(files, upload.name);
  if (await s.prisma.model.findFirst({ where: { teamId: team.id, name: upload.name }, select: { id: true } }))
    throw new ApiError(409, 'conflict', `the team already has a model named ${upload.name}`, 'name');

  const id = uuidv7();
  const key = `models/${team.id}/${id}`;
  const stored: string[] = [];
  try {
    for (const [file, data] of files) {
      await s.artifacts.put(`${key}/${file}`, data);
      stored.push(`${key}/${file}`);
    }
    return await s.prisma.model.create({
      data: {
        id,
        teamId: team.id,
        name: upload.name,
        key,
        architecture: hfModelClass(facts.config),
        modelType: ('modelType' in facts.config ? facts.config.modelType : undefined) ?? 'gpt2',
        config: facts.config as unknown as Prisma.InputJsonObject,
        parameterCount: BigInt(facts.parameterCount),
        dtype: facts.dtype,
        contextLength: facts.config.maxPositions,
        vocabSize: facts.config.vocabSize,
        hasTokenizer: facts.hasTokenizer,
        hasChatTemplate: facts.hasChatTemplate,
        files: [...files].map(([name, data]) => ({ name, bytes: data.length, sha256: sha256(data) })),
        bytes: BigInt(archive.length),
        sha256: sha256(archive),
      },
    });
  } catch (error) {
    for (const file of stored) await s.artifacts.delete(file).catch(() => {});
    if (isUniqueViolation(error))
      throw new ApiError(409, 'conflict', `the team already has a model named ${upload.name}`, 'name');
    throw error;
  }
}

/** The team's models, newest first; `cursor` is the last id of the previous page. */
export async function modelPage(s: Services, team: Team, page: { cursor?: string; limit: number }) {
  const rows = await s.prisma.model.findMany({
    where: { teamId: team.id, ...(page.cursor ? { id: { lt: page.cursor } } : {}) },
    orderBy: { id: 'desc' },
    take: page.limit + 1,
  });
  const items = rows.slice(0, page.limit);
  return { rows: items, nextCursor: rows.length > page.limit ? items[items.length - 1].id : null };
}

/** One of the team's models; 404 for anything else (another team's id included). */
export async function findModel(s: Services, team: Team, modelId: string): Promise<ModelRow> {
  const row = await s.prisma.model.findFirst({ where: { id: modelId, teamId: team.id } });
  if (!row) throw notFound('model', modelId);
  return row;
}

/** Deletes a model no run uses (409 otherwise: a run's stages and resumes read its files). */
export async function deleteModel(s: Services, team: Team, modelId: string): Promise<void> {
  const row = await findModel(s, team, modelId);
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
    owned_by: row.teamId,
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
