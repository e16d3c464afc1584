import type { StageRunners } from '@rlhf/queue';

/**
 * The stage trainers this worker runs, by stage kind. The SFT, reward-model and PPO trainers register here
 * (e.g. `sft: runSftStage` from @rlhf/sft) as they land; a job of a kind missing here fails with a clear error.
 */
export const runners: StageRunners = {};
