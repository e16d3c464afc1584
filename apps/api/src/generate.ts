// POST /v1/runs/:runId/generate: sample from a finished run's policy.
import type { Static } from 'typebox';
import { ApiError } from './errors.js';
import type { RunWithStages } from './runs.js';
import type { GenerateBody, GenerateResponse } from './schemas.js';
import type { Services } from './services.js';

/** The policy to sample from: the requested stage, else the last finished policy stage (ppo, then sft). */
export function policyStage(run: RunWithStages, stage?: 'sft' | 'ppo') {
  const finished = run.stages.filter((st) => st.status === 'succeeded' && st.modelKey !== null);
  const pick = (kind: 'sft' | 'ppo') => finished.find((st) => st.kind === kind);
  const found = stage ? pick(stage) : (pick('ppo') ?? pick('sft'));
  if (!found) {
    const which = stage ? `a finished ${stage} stage` : 'a finished sft or ppo stage';
    throw new ApiError(409, 'no_policy', `run ${run.id} has no policy to sample from yet: it needs ${which}`);
  }
  return found;
}

export async function generate(
  _s: Services,
  run: RunWithStages,
  body: GenerateBody,
): Promise<Static<typeof GenerateResponse>> {
  policyStage(run, body.stage);
  // Sampling runs the policy's ONNX generation graph; packages/model does not export a generator yet.
  throw new ApiError(
    501,
    'not_implemented',
    'sampling from a policy is not available yet: it needs the generator of packages/model',
  );
}
