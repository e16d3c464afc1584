// The commands, in the order `rlhf --help` lists them.
import type { Command } from '../command.js';
import { cancel } from './cancel.js';
import { completion } from './completion.js';
import { datasetsList } from './datasets-list.js';
import { datasetsUpload } from './datasets-upload.js';
import { download } from './download.js';
import { evaluate, evaluation, evaluations } from './eval.js';
import { events } from './events.js';
import { leaderboard } from './leaderboard.js';
import { login } from './login.js';
import { metrics } from './metrics.js';
import { modelsList } from './models-list.js';
import { modelsUpload } from './models-upload.js';
import { runs } from './runs.js';
import { samples } from './samples.js';
import { show } from './show.js';
import { submit } from './submit.js';
import { watch } from './watch.js';
import { workers } from './workers.js';

export const COMMANDS: readonly Command[] = [
  login,
  datasetsUpload,
  datasetsList,
  modelsUpload,
  modelsList,
  submit,
  watch,
  runs,
  show,
  metrics,
  samples,
  events,
  cancel,
  download,
  evaluate,
  evaluation,
  evaluations,
  leaderboard,
  workers,
  completion,
];
