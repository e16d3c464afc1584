// Programmatic rewards a worker knows by name: a PPO config's `groundTruth` names one, and its score of each
// sampled response is logged as objective/ground_truth (reward hacking shows as scores up, ground truth down).
import { UnrecoverableError } from 'bullmq';

/** Score of a response to a prompt, higher is better. */
export type GroundTruth = (prompt: string, response: string) => number;
/** Task name (@rlhf/contracts TASK_NAME) -> its ground truth. */
export type Tasks = Readonly<Record<string, GroundTruth>>;

/** The named task's ground truth; null = none. An unknown name fails the stage (retrying cannot help). */
export function groundTruthOf(tasks: Tasks, name: string | null): GroundTruth | undefined {
  if (name === null) return undefined;
  const score = Object.hasOwn(tasks, name) ? tasks[name] : undefined;
  if (!score) {
    const known = Object.keys(tasks);
    throw new UnrecoverableError(
      `ground-truth task '${name}' is not registered on this worker (${known.length ? `it knows: ${known.join(', ')}` : 'it knows none'}; start it with --tasks)`,
    );
  }
  return score;
}
