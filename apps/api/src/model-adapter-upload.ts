// An adapter alone: a tar holding a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors, at its top
// or under adapter/) and no config.json registers as a model on the registered or admin model that its
// base_model_name_or_path names (id or name). The base's files are hard-linked (copied across file systems) beside
// the adapter, so the new model is a base + adapter directory like an upload of both and the base is not sent again.
import { copyFile, link, realpath } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { ArtifactStore } from '@rlhf/artifacts';
import type { Model as ModelRow, Prisma, Team } from '@rlhf/db';
import type { GptConfig } from '@rlhf/model';
import { ADAPTER_FILES, checkUploadedAdapter } from './model-adapter.js';
import { invalidModel } from './model-inspect.js';
import type { ReceivedModel } from './model-upload.js';
import type { Services } from './services.js';

const FIELD = `${ADAPTER_FILES[0]}/base_model_name_or_path`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type StoredFile = { name: string; bytes: number; sha256: string };

/** Whether the upload is an adapter without a base: no config.json, adapter files present. */
export const isAdapterOnly = (files: ReadonlyMap<string, unknown>): boolean =>
  !files.has('config.json') && ADAPTER_FILES.some((f) => files.has(f));

/** The model base_model_name_or_path names: by id, else the team's model of that name, else the admin one. */
async function adapterBase(s: Services, team: Team, received: ReceivedModel): Promise<ModelRow> {
  let json: unknown;
  try {
    json = JSON.parse(await s.artifacts.getText(`${received.dir}/${ADAPTER_FILES[0]}`));
  } catch (error) {
    throw invalidModel(`${ADAPTER_FILES[0]}: invalid JSON: ${(error as Error).message}`, ADAPTER_FILES[0]);
  }
  const name = (json as { base_model_name_or_path?: unknown } | null)?.base_model_name_or_path;
  if (typeof name !== 'string' || name.length === 0)
    throw invalidModel(
      `${FIELD}: an adapter uploaded without its base must name a registered model (its id or name)`,
      FIELD,
    );
  const rows = await s.prisma.model.findMany({
    where: {
      AND: [
        { OR: [{ teamId: team.id }, { teamId: null }] },
        { OR: [{ name }, ...(UUID.test(name) ? [{ id: name }] : [])] },
      ],
    },
  });
  const base =
    rows.find((r) => r.id === name) ??
    rows.find((r) => r.teamId !== null) ??
    rows.find((r) => r.teamId === null);
  if (!base)
    throw invalidModel(
      `${FIELD}: ${JSON.stringify(name)} is not a model of the team or an admin model (name or id)`,
      FIELD,
    );
  if ((base.files as StoredFile[]).some((f) => f.name.startsWith('adapter/')))
    throw invalidModel(
      `${FIELD}: model ${base.name} carries an adapter itself: name the model it is on instead`,
      FIELD,
    );
  return base;
}

/** Hard-links (or, on another file system, copies) the base's files into the received directory. */
async function linkBaseFiles(artifacts: ArtifactStore, base: ModelRow, received: ReceivedModel) {
  const from = isAbsolute(base.key) ? base.key : artifacts.path(base.key);
  for (const file of base.files as StoredFile[]) {
    // An admin directory's file may be a symlink: link its target, not the link.
    const source = await realpath(join(from, file.name));
    const target = artifacts.path(`${received.dir}/${file.name}`);
    await link(source, target).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EXDEV' && error.code !== 'EPERM') throw error;
      await copyFile(source, target);
    });
    received.files.set(file.name, { bytes: file.bytes, sha256: file.sha256 });
  }
}

/**
 * For an adapter-only upload: the adapter checked against the named base (400 naming file and field or tensor),
 * the base's files linked beside it, and the row's facts (the base's); null for any other upload.
 */
export async function adapterOnlyFacts(s: Services, team: Team, received: ReceivedModel) {
  if (!isAdapterOnly(received.files)) return null;
  const missing = ADAPTER_FILES.find((f) => !received.files.has(f));
  if (missing) throw invalidModel(`${missing}: missing (an adapter needs both PEFT files)`, missing);
  const base = await adapterBase(s, team, received);
  const files = new Map<string, Uint8Array>();
  for (const name of ADAPTER_FILES)
    if (received.files.has(name)) files.set(name, await s.artifacts.get(`${received.dir}/${name}`));
  checkUploadedAdapter(files, base.config as unknown as GptConfig);
  await linkBaseFiles(s.artifacts, base, received);
  return {
    architecture: base.architecture,
    modelType: base.modelType,
    config: base.config as Prisma.InputJsonObject,
    parameterCount: base.parameterCount,
    dtype: base.dtype,
    contextLength: base.contextLength,
    vocabSize: base.vocabSize,
    hasTokenizer: base.hasTokenizer,
    hasChatTemplate: base.hasChatTemplate,
  };
}
