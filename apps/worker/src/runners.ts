import type { StageRunners } from '@rlhf/queue';
import { stageRunners } from './stages.js';

/** The stage trainers this worker runs, by stage kind (a job of a kind missing here fails with a clear error). */
export const runners: StageRunners = stageRunners;
