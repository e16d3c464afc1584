// Naming a run's stage on the command line: by kind (sft, ppo, ...) or by id.
import { UsageError } from './args.js';
import type { RunView, StageView } from './client.js';

export function findStage(run: RunView, ref: string): StageView {
  const stage = run.stages.find((s) => s.id === ref || s.kind === ref);
  if (!stage)
    throw new UsageError(
      `run ${run.id} has no stage ${JSON.stringify(ref)} (it has ${run.stages.map((s) => s.kind).join(', ')})`,
    );
  return stage;
}

/** Stage id -> kind, for printing. */
export const stageKinds = (run: RunView): Map<string, string> =>
  new Map(run.stages.map((s) => [s.id, s.kind]));
