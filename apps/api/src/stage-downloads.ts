// A finished stage's model as one Hugging Face directory in a tar: its `hf/` files at the top (config.json,
// generation_config.json, safetensors, tokenizer files) and a LoRA stage's PEFT files under `adapter/`, so
// `tar -xf` gives a directory `from_pretrained` (and `PeftModel.from_pretrained` on adapter/) loads as it is.
import type { TarStreamMember } from '@rlhf/artifacts';
import type { Team } from '@rlhf/db';
import { ApiError, notFound } from './errors.js';
import { findRun } from './runs.js';
import type { Services } from './services.js';

export interface StageModelArchive {
  /** The archive's name: <run>-<stage kind>.tar. */
  filename: string;
  members: TarStreamMember[];
}

/** The members of a finished stage's model archive (404 for another team's run or an unknown stage). */
export async function stageModelArchive(
  s: Services,
  team: Team,
  runId: string,
  stageId: string,
): Promise<StageModelArchive> {
  const run = await findRun(s, team, runId);
  const stage = run.stages.find((st) => st.id === stageId);
  if (!stage) throw notFound('stage', stageId);
  if (stage.status !== 'succeeded' || stage.modelKey === null)
    throw new ApiError(
      409,
      'conflict',
      `stage ${stageId} (${stage.kind}) has no finished model yet: it is ${stage.status}`,
    );
  const root = stage.modelKey;
  const keys = [...(await s.artifacts.list(`${root}/hf/`)), ...(await s.artifacts.list(`${root}/adapter/`))];
  if (keys.length === 0) throw notFound('model directory of stage', stageId);
  const members = await Promise.all(
    keys.map(async (key) => ({
      path: key.startsWith(`${root}/hf/`) ? key.slice(`${root}/hf/`.length) : key.slice(`${root}/`.length),
      size: (await s.artifacts.info(key)).bytes,
      open: () => s.artifacts.stream(key),
    })),
  );
  return { filename: `${run.id}-${stage.kind}.tar`, members };
}
