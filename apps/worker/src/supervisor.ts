import { type ChildProcess, fork } from 'node:child_process';
import type { Logger } from '@rlhf/config';

// `--devices 0,1,2,3`: one worker process per device (a crash, CUDA error or OOM takes down one GPU's worker,
// not the others), restarted with exponential backoff.

export interface SupervisorOptions {
  devices: string[];
  /** The worker entry (main.ts) and the flags for one device. */
  script: string;
  args: (device: string) => string[];
  /** Worker ids are `${workerId}-${index}`: stable across restarts. */
  workerId: string;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  /** First restart delay, doubled per crash in a row up to maxRestartDelayMs (defaults 1 s, 30 s). */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
  /** A process that lived this long resets the backoff (default 60 s). */
  healthyAfterMs?: number;
}

export interface Supervisor {
  /** Live worker processes' pids, by device index. */
  pids(): (number | undefined)[];
  /** SIGTERM to every worker (each checkpoints and requeues its stage), resolves when all have exited. */
  stop(): Promise<void>;
}

export function superviseWorkers(options: SupervisorOptions): Supervisor {
  const { logger } = options;
  const firstDelay = options.restartDelayMs ?? 1000;
  const maxDelay = options.maxRestartDelayMs ?? 30_000;
  const healthyAfter = options.healthyAfterMs ?? 60_000;
  let stopping = false;

  const slots = options.devices.map((device, index) => ({
    device,
    workerId: `${options.workerId}-${index}`,
    child: undefined as ChildProcess | undefined,
    exited: Promise.resolve(),
    crashes: 0,
    restartTimer: undefined as NodeJS.Timeout | undefined,
  }));

  const start = (slot: (typeof slots)[number]) => {
    slot.restartTimer = undefined;
    const startedAt = Date.now();
    const child = fork(options.script, options.args(slot.device), {
      env: { ...(options.env ?? process.env), WORKER_ID: slot.workerId, DEVICE: slot.device },
      stdio: 'inherit',
    });
    slot.child = child;
    slot.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        slot.child = undefined;
        resolve();
        if (stopping) return;
        slot.crashes = Date.now() - startedAt >= healthyAfter ? 1 : slot.crashes + 1;
        const delay = Math.min(maxDelay, firstDelay * 2 ** (slot.crashes - 1));
        logger.error(
          { workerId: slot.workerId, device: slot.device, code, signal, restartInMs: delay },
          'worker process exited; restarting',
        );
        slot.restartTimer = setTimeout(() => start(slot), delay);
      });
    });
    logger.info({ workerId: slot.workerId, device: slot.device, pid: child.pid }, 'worker process started');
  };

  for (const slot of slots) start(slot);

  return {
    pids: () => slots.map((slot) => slot.child?.pid),
    async stop() {
      stopping = true;
      for (const slot of slots) {
        clearTimeout(slot.restartTimer);
        slot.child?.kill('SIGTERM');
      }
      await Promise.all(slots.map((slot) => slot.exited));
    },
  };
}
