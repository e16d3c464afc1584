// A registered model may carry a PEFT LoRA adapter (or a PROMPT_TUNING one, served with its virtual tokens): `adapter/adapter_config.json` + `adapter/adapter_model.safetensors`
// beside the base's files (what `model.save_pretrained(dir + '/adapter')` writes next to the base). It is read
// against the base at upload (peft_type, r, target modules, every tensor's shape, no unknown key), and a run's first
// SFT stage with `lora` starts from it, so that stage's lora must describe the same adapter (r, targets, saved modules).
import { readFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import type { FieldError, RunSpec } from '@rlhf/contracts';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  type GptConfig,
  type LoraSection,
  type LoraSettings,
  LoraError,
  loraSettingsFromPeft,
  loraSettingsOf,
  PROMPT_EMBEDDINGS,
  peftAdapterFromFiles,
  promptTuningFromFiles,
} from '@rlhf/model';
import type { ArtifactStore } from '@rlhf/artifacts';
import type { PrismaClient } from '@rlhf/db';
import { ApiError } from './errors.js';

/** The adapter's files as they are named in the model directory. */
export const ADAPTER_FILES = [`adapter/${ADAPTER_CONFIG}`, `adapter/${ADAPTER_WEIGHTS}`];

/** The file of the directory a LoraError of peftAdapterFromFiles is about: a tensor key is the weights'. */
const fileOf = (field: string): string =>
  field !== ADAPTER_CONFIG &&
  (field === ADAPTER_WEIGHTS || field === PROMPT_EMBEDDINGS || !/^[a-z_]+$/.test(field))
    ? ADAPTER_FILES[1]
    : ADAPTER_FILES[0];

/** Whether PEFT's adapter_config.json is a prompt-tuning one (else it is read as LoRA). */
export function isPromptTuningConfig(bytes: Uint8Array): boolean {
  try {
    return JSON.parse(new TextDecoder().decode(bytes))?.peft_type === 'PROMPT_TUNING';
  } catch {
    return false; // the LoRA reader names the bad JSON
  }
}

/** Our settings' names in a LoraError of promptTuningFromFiles, as PEFT's config spells them. */
const PEFT_FIELDS: Record<string, string> = { numVirtualTokens: 'num_virtual_tokens' };

/** 400 unless the upload's adapter (when it has one, both files) reads onto this base; names file and field/tensor. */
export function checkUploadedAdapter(files: ReadonlyMap<string, Uint8Array>, config: GptConfig): void {
  const present = ADAPTER_FILES.filter((f) => files.has(f));
  if (present.length === 0) return;
  const missing = ADAPTER_FILES.find((f) => !files.has(f));
  if (missing)
    throw new ApiError(
      400,
      'invalid_model',
      `${missing}: missing (an adapter needs both PEFT files)`,
      missing,
    );
  const peft = {
    [ADAPTER_CONFIG]: files.get(ADAPTER_FILES[0]) as Uint8Array,
    [ADAPTER_WEIGHTS]: files.get(ADAPTER_FILES[1]) as Uint8Array,
  };
  try {
    // A PEFT PROMPT_TUNING adapter (virtual tokens) or a LoRA one.
    if (isPromptTuningConfig(peft[ADAPTER_CONFIG])) promptTuningFromFiles(config, peft);
    else peftAdapterFromFiles(config, peft);
  } catch (error) {
    if (!(error instanceof LoraError)) throw error;
    const named = PEFT_FIELDS[error.field] ?? error.field;
    const file = fileOf(named);
    const field = named === ADAPTER_CONFIG || named === ADAPTER_WEIGHTS ? file : `${file}/${named}`;
    throw new ApiError(400, 'invalid_model', `${file}: ${error.message}`, field);
  }
}

/** The stored LoRA adapter's settings of a registered model (null: it has none, or a prompt-tuning one). */
export async function storedAdapterSettings(
  artifacts: ArtifactStore,
  model: { key: string; files: unknown; config: unknown },
): Promise<LoraSettings | null> {
  const names = (model.files as { name: string }[] | null) ?? [];
  if (!names.some((f) => f.name === ADAPTER_FILES[0])) return null;
  const path = isAbsolute(model.key) ? model.key : artifacts.path(model.key);
  const json = JSON.parse(await readFile(`${path}/${ADAPTER_FILES[0]}`, 'utf8'));
  if (json?.peft_type === 'PROMPT_TUNING') return null; // served, not continued: a run starts from the base
  return loraSettingsFromPeft(model.config as GptConfig, json);
}

const sameSet = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((x) => b.includes(x));

/**
 * The run's first SFT stage starts from the model's adapter when its config has `lora`: r, alpha, rsLoRA, target
 * and saved modules must be the adapter's (dropout may differ: it plays no part in the outputs).
 */
export function adapterMismatchErrors(spec: RunSpec, config: GptConfig, adapter: LoraSettings): FieldError[] {
  const i = spec.stages.findIndex((stage) => stage.kind === 'sft');
  const lora = i < 0 ? undefined : (spec.stages[i].config as { lora?: LoraSection } | undefined)?.lora;
  if (!lora) return [];
  const wanted = loraSettingsOf(lora, config);
  const path = `/stages/${i}/config/lora`;
  const errors: FieldError[] = [];
  if (wanted.r !== adapter.r)
    errors.push({
      path: `${path}/r`,
      message: `must be the model's adapter's r (${adapter.r}), got ${wanted.r}`,
    });
  // The scale s = α/r (α/√r) is part of what the adapter computes: another one would start from another model.
  if (wanted.alpha !== adapter.alpha)
    errors.push({
      path: `${path}/alpha`,
      message: `must be the model's adapter's lora_alpha (${adapter.alpha}), got ${wanted.alpha}`,
    });
  if (wanted.useRslora !== adapter.useRslora)
    errors.push({
      path: `${path}/useRslora`,
      message: `must be the model's adapter's use_rslora (${adapter.useRslora})`,
    });
  if (!sameSet(wanted.targetModules, adapter.targetModules))
    errors.push({
      path: `${path}/targetModules`,
      message: `must be the model's adapter's target modules (${adapter.targetModules.join(', ')})`,
    });
  if (!sameSet(wanted.modulesToSave, adapter.modulesToSave))
    errors.push({
      path: `${path}/modulesToSave`,
      message: `must be the model's adapter's saved modules (${adapter.modulesToSave.join(', ') || 'none'})`,
    });
  return errors;
}

/** adapterMismatchErrors for a run on `registered` (none for a preset, a fromRun run or a model without adapter). */
export async function registeredAdapterErrors(
  artifacts: ArtifactStore,
  spec: RunSpec,
  registered: { key: string; files: unknown; config: unknown } | null,
): Promise<FieldError[]> {
  if (!registered || 'fromRun' in spec.model) return [];
  const adapter = await storedAdapterSettings(artifacts, registered);
  return adapter ? adapterMismatchErrors(spec, registered.config as GptConfig, adapter) : [];
}

/**
 * Points the received adapter at its own directory (base_model_name_or_path = the model's key): the inference
 * worker then serves the directory's weights + the adapter, unmerged, whatever base name PEFT wrote.
 */
export async function pointAdapterAtItself(
  artifacts: ArtifactStore,
  received: { dir: string; files: Map<string, { bytes: number; sha256: string }> },
  key: string,
): Promise<void> {
  const name = ADAPTER_FILES[0];
  if (!received.files.has(name)) return;
  const json = JSON.parse(await artifacts.getText(`${received.dir}/${name}`));
  const info = await artifacts.put(
    `${received.dir}/${name}`,
    `${JSON.stringify({ ...json, base_model_name_or_path: key }, null, 2)}\n`,
  );
  received.files.set(name, { bytes: info.bytes, sha256: info.sha256 ?? '' });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A LoRA stage's model.tar holds its merged model with the adapter beside it: applying that adapter to those
 * weights would count it twice, so such an upload registers as the merged checkpoint alone (the adapter's files are
 * removed from the received directory, which then serves and trains exactly as the stage's model). True when so.
 */
export async function dropMergedExportAdapter(
  prisma: PrismaClient,
  artifacts: ArtifactStore,
  metadata: Record<string, string>,
  received: { dir: string; files: Map<string, unknown> },
): Promise<boolean> {
  const stageId = metadata.stageId;
  if (!received.files.has(ADAPTER_FILES[0]) || !stageId || !UUID.test(stageId)) return false;
  const stage = await prisma.stage.findUnique({ where: { id: stageId }, select: { config: true } });
  if (!(stage?.config as { lora?: unknown } | null | undefined)?.lora) return false;
  await artifacts.delete(`${received.dir}/adapter`); // only the adapter's two files are accepted under adapter/
  for (const name of ADAPTER_FILES) received.files.delete(name);
  return true;
}
