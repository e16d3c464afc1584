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

/** The stages of `spec` whose reward is a grader, with the path of that grader. */
function graderStages(spec: RunSpec) {
  return spec.stages.flatMap((stage, i) =>
    stage.kind === 'grpo' && typeof stage.config.reward === 'object'
      ? [{ index: i, datasetId: stage.datasetId, grader: stage.config.reward as unknown as GraderSpec }]
      : [],
  );
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
  for (const { index, datasetId, grader } of graderStages(spec)) {
    const at = `/stages/${index}/config/reward`;
    const specErrors = graderErrors(grader, { rewardModel, tokenizer: true });
    errors.push(...specErrors.map((e) => ({ ...e, path: `${at}${e.path}` })));
    if (specErrors.length > 0) continue;
    const dataset = await s.prisma.dataset.findFirst({ where: { id: datasetId, teamId: team.id } });
    if (!dataset || dataset.kind !== 'prompt') continue; // validateRunSpec named it
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
