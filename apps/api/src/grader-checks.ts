// Declared graders of a run checked at submission as the worker will run them: the spec itself (safe regexes,
// valid JSON Schemas), a reward model where a reward_model grader needs one, and every prompt row having the
// fields the grader refers to. A run never starts with a grader that would fail mid-run.
import {
  type FieldError,
  type GraderSpec,
  type PromptRow,
  pointer,
  type RunSpec,
  validateJsonl,
} from '@rlhf/contracts';
import type { Team } from '@rlhf/db';
import { graderErrors, rowFieldErrors } from '@rlhf/graders';
import { keys } from '@rlhf/queue';
import type { Services } from './services.js';

/** The stages of `spec` with a declared grader: where it is, and whether the run's reward model may serve it. */
function graderStages(spec: RunSpec, rewardModel: boolean) {
  return spec.stages.flatMap((stage, i) => {
    const at = (field: string) => ({
      index: i,
      datasetId: stage.datasetId,
      at: `/stages/${i}/config/${field}`,
    });
    if (stage.kind === 'grpo' && typeof stage.config.reward === 'object')
      return [{ ...at('reward'), grader: stage.config.reward as unknown as GraderSpec, rewardModel }];
    // PPO's reward model is already the base score: its grader is added to it, without reward_model graders.
    if (stage.kind === 'ppo' && stage.config.grader)
      return [{ ...at('grader'), grader: stage.config.grader as unknown as GraderSpec, rewardModel: false }];
    // An eval stage's grader judge scores both sides alone: no reward_model graders.
    if (stage.kind === 'eval' && stage.config.judge.type === 'grader')
      return [
        {
          ...at('judge/grader'),
          grader: stage.config.judge.grader as unknown as GraderSpec,
          rewardModel: false,
        },
      ];
    return [];
  });
}

export async function runGraderErrors(
  s: Services,
  team: Team,
  spec: RunSpec,
  context: { fromRunRewardModel: boolean },
): Promise<FieldError[]> {
  const rewardModel =
    context.fromRunRewardModel || spec.stages.some((stage) => stage.kind === 'reward_model');
  const errors: FieldError[] = [];
  for (const { index, datasetId, grader, at, rewardModel: served } of graderStages(spec, rewardModel)) {
    const specErrors = graderErrors(grader, { rewardModel: served, tokenizer: true });
    errors.push(...specErrors.map((e) => ({ ...e, path: `${at}${e.path}` })));
    if (specErrors.length > 0) continue;
    const dataset = await s.prisma.dataset.findFirst({ where: { id: datasetId, teamId: team.id } });
    if (dataset?.kind !== 'prompt') continue; // validateRunSpec named it
    const result = await validateJsonl(
      'prompt',
      await s.artifacts.getText(keys.dataset(team.id, dataset.sha256)),
    );
    if (!result.ok) continue;
    for (const e of rowFieldErrors(grader, result.rows as PromptRow[])) {
      const [, row, field] = e.path.split('/');
      errors.push({
        path: pointer(`/stages/${index}`, 'datasetId'),
        message: `line ${Number(row) + 1} of dataset ${datasetId} has no field "${field}", which the grader at ${at} refers to`,
      });
    }
  }
  return errors;
}
