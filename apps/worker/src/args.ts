import { parseArgs } from 'node:util';
import { parseDevice } from '@rlhf/runtime';

// Command line of the worker process. Environment (REDIS_URL, ARTIFACT_DIR, DEVICE, WORKER_ID, LOG_LEVEL) is
// read by @rlhf/config; flags override the device and set what a deployment rarely changes.

export interface WorkerArgs {
  /** One device (overrides DEVICE). */
  device?: string;
  /** Several devices: run a supervisor with one worker process per device. */
  devices?: string[];
  /** Module exporting `runners` (StageRunners) instead of the built-in trainers. */
  runners?: string;
  /** Module exporting `tasks` (programmatic rewards by name, e.g. @rlhf/examples). */
  tasks?: string;
  prefix?: string;
  lockDuration?: number;
  stalledInterval?: number;
  maxStalledCount?: number;
  heartbeatInterval?: number;
  /** Serve chat/completion requests (the inference consumer) instead of stage jobs. */
  inference?: boolean;
  /** Run evaluation jobs (POST /v1/evaluations) instead of stage jobs. */
  evaluations?: boolean;
}

export const USAGE = `usage: worker [--device cpu|cuda|cuda:N] [--devices 0,1,... | cpu,cpu]
              [--runners <module>] [--tasks <module>] [--prefix <redis namespace>]
              [--inference | --evaluations] [--lock-duration <ms>] [--stalled-interval <ms>] [--max-stalled-count <n>] [--heartbeat-interval <ms>]`;

export function parseWorkerArgs(argv: string[]): WorkerArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      device: { type: 'string' },
      devices: { type: 'string' },
      runners: { type: 'string' },
      tasks: { type: 'string' },
      prefix: { type: 'string' },
      'lock-duration': { type: 'string' },
      'stalled-interval': { type: 'string' },
      'max-stalled-count': { type: 'string' },
      'heartbeat-interval': { type: 'string' },
      inference: { type: 'boolean' },
      evaluations: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.device !== undefined && values.devices !== undefined)
    throw new Error('--device and --devices are exclusive');
  const args: WorkerArgs = {};
  if (values.device !== undefined) args.device = parseDevice(values.device);
  if (values.devices !== undefined) args.devices = parseDeviceList(values.devices);
  if (values.runners !== undefined) args.runners = values.runners;
  if (values.tasks !== undefined) args.tasks = values.tasks;
  if (values.prefix !== undefined) args.prefix = values.prefix;
  if (values.inference && values.evaluations) throw new Error('--inference and --evaluations are exclusive');
  if (values.inference) args.inference = true;
  if (values.evaluations) args.evaluations = true;
  const int = (flag: string, value: string | undefined, min: number) => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isInteger(n) || n < min)
      throw new Error(`--${flag}: expected an integer >= ${min}, got "${value}"`);
    return n;
  };
  const lockDuration = int('lock-duration', values['lock-duration'], 100);
  const stalledInterval = int('stalled-interval', values['stalled-interval'], 100);
  const maxStalledCount = int('max-stalled-count', values['max-stalled-count'], 0);
  const heartbeatInterval = int('heartbeat-interval', values['heartbeat-interval'], 50);
  return {
    ...args,
    ...(lockDuration === undefined ? {} : { lockDuration }),
    ...(stalledInterval === undefined ? {} : { stalledInterval }),
    ...(maxStalledCount === undefined ? {} : { maxStalledCount }),
    ...(heartbeatInterval === undefined ? {} : { heartbeatInterval }),
  };
}

/** '0,1,3' -> cuda:0, cuda:1, cuda:3; 'cpu' and 'cuda:N' entries are taken as they are. */
export function parseDeviceList(list: string): string[] {
  const devices = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => (/^\d+$/.test(s) ? `cuda:${s}` : parseDevice(s)));
  if (devices.length === 0)
    throw new Error(`--devices: expected a list such as 0,1 or cpu,cpu, got "${list}"`);
  return devices;
}

/** The flags a supervisor passes on to each worker process (all but --devices). */
export function childArgs(args: WorkerArgs, device: string): string[] {
  const out = ['--device', device];
  if (args.runners !== undefined) out.push('--runners', args.runners);
  if (args.tasks !== undefined) out.push('--tasks', args.tasks);
  if (args.prefix !== undefined) out.push('--prefix', args.prefix);
  if (args.inference) out.push('--inference');
  if (args.evaluations) out.push('--evaluations');
  if (args.lockDuration !== undefined) out.push('--lock-duration', String(args.lockDuration));
  if (args.stalledInterval !== undefined) out.push('--stalled-interval', String(args.stalledInterval));
  if (args.maxStalledCount !== undefined) out.push('--max-stalled-count', String(args.maxStalledCount));
  if (args.heartbeatInterval !== undefined) out.push('--heartbeat-interval', String(args.heartbeatInterval));
  return out;
}
