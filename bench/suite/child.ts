// Runs one measurement in a child process (so its maxRSS is its own) and parses the last JSON line it prints.
// A child past maxRssMb is killed and reported: the machine is shared, and the kernel's OOM killer would pick
// someone else's process.
import { spawn } from 'node:child_process';
import { rssMiB } from '../child.js';

export type ChildResult = Record<string, unknown> & { failed?: true; reason?: string };

export function runChild(command: string, args: readonly string[], maxRssMb: number): Promise<ChildResult> {
  return new Promise((resolve) => {
    const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let sampledPeak = 0;
    let killed = false;
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
    const watch = setInterval(() => {
      sampledPeak = Math.max(sampledPeak, rssMiB(proc.pid ?? 0));
      if (sampledPeak > maxRssMb && !killed) {
        killed = true;
        proc.kill('SIGKILL');
      }
    }, 100);
    proc.on('error', (error) => {
      clearInterval(watch);
      resolve({ failed: true, reason: `could not start ${command}: ${error.message}` });
    });
    proc.on('close', (code, signal) => {
      clearInterval(watch);
      const line = out.trim().split('\n').at(-1);
      if (code === 0 && line) return resolve(JSON.parse(line) as ChildResult);
      resolve({
        failed: true,
        reason: killed
          ? `RSS passed ${maxRssMb} MiB`
          : `exit ${code ?? signal}: ${err.trim().split('\n').at(-1)}`,
        sampledPeakRssMiB: sampledPeak,
      });
    });
  });
}
