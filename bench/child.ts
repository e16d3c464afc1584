// One bench mode in a child process, watched for RSS: its peak memory is its own, and a child past the cap is
// killed and reported (the machine is shared: better a reported failure than the kernel's OOM killer picking
// another process).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** The current RSS of /proc/<pid>/status (kB -> MiB), or 0 once the process is gone. */
export const rssMiB = (pid: number) => {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Math.round(Number(kb) / 1024) : 0;
  } catch {
    return 0;
  }
};

/**
 * Runs `node args` (whose `--mode` names the mode) and parses the last line of its stdout as JSON; a child
 * whose sampled RSS passes maxRssMb is killed and reported as failed with that sample and its seconds.
 */
export function runChild(args: string[], maxRssMb: number): Promise<Record<string, unknown>> {
  const mode = args[args.indexOf('--mode') + 1];
  const started = performance.now();
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let sampledPeak = 0;
    let killed = false;
    proc.stdout.on('data', (d) => (out += d));
    const watch = setInterval(() => {
      sampledPeak = Math.max(sampledPeak, rssMiB(proc.pid ?? 0));
      if (sampledPeak > maxRssMb && !killed) {
        killed = true;
        proc.kill('SIGKILL');
      }
    }, 100);
    proc.on('close', (code, signal) => {
      clearInterval(watch);
      const line = out.trim().split('\n').at(-1);
      if (code === 0 && line) return resolve(JSON.parse(line));
      resolve({
        mode,
        failed: true,
        reason: killed ? `RSS passed --max-rss-mb ${maxRssMb}` : `exit ${code ?? signal}`,
        sampledPeakRssMiB: sampledPeak,
        seconds: Math.round((performance.now() - started) / 100) / 10,
      });
    });
  });
}
