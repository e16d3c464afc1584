// The engine against PyTorch on the same machine: every suite measurement (bench/suite.ts) and its PyTorch
// reference (bench/reference/suite.py, eager fp32, same shapes, same thread count), each in its own child process,
// interleaved ours, theirs, ours, theirs, … so a loaded machine slows both alike; prints the medians of N rounds
// and the ratios ours / PyTorch (tokens/s: above 1 = we are faster; memory and set-up: above 1 = we use more).
// Needs a python3 with torch (not a project dependency; CI never runs this).
// Run: npx tsx bench/compare.ts [--rounds 3] [--python /usr/bin/python3] [every bench/suite.ts flag]
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { countParams } from '@rlhf/model';
import { type ChildResult, runChild } from './suite/child.js';
import {
  argOf,
  MODES,
  type Mode,
  machine,
  median,
  parseList,
  parseShapes,
  type SuitePreset,
  suiteConfig,
} from './suite/shapes.js';

const argv = process.argv.slice(2);
const shapes = parseShapes(argv);
const rounds = Number(argOf(argv, 'rounds', '3'));
const python = argOf(argv, 'python', existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
const maxRssMb = Number(argOf(argv, 'max-rss-mb', '21000'));
const suite = fileURLToPath(new URL('./suite.ts', import.meta.url));
const reference = fileURLToPath(new URL('./reference/suite.py', import.meta.url));
const shapeArgs = Object.entries({
  batch: shapes.batch,
  prompt: shapes.promptLen,
  'new-tokens': shapes.newTokens,
  'sft-batch': shapes.sftBatch,
  seq: shapes.seq,
  'fused-steps': shapes.fusedSteps,
  'ppo-epochs': shapes.ppoEpochs,
  minibatches: shapes.minibatches,
  calls: shapes.calls,
  threads: shapes.threads,
  seed: shapes.seed,
}).flatMap(([name, value]) => [`--${name}`, String(value)]);

/** Medians over the rounds that did not fail, or null when every round failed. */
function summary(runs: ChildResult[]) {
  const ok = runs.filter((r) => !r.failed);
  if (ok.length === 0) return null;
  const of = (field: string) => Math.round(1e4 * median(ok.map((r) => r[field] as number))) / 1e4;
  return {
    tokensPerSecond: of('tokensPerSecond'),
    secondsPerCall: of('secondsPerCall'),
    tokensPerCpuSecond: of('tokensPerCpuSecond'),
    setupMs: of('setupMs'),
    firstCallMs: of('firstCallMs'),
    peakRssMiB: of('peakRssMiB'),
  };
}
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined ? null : Math.round((100 * a) / b) / 100;

for (const preset of parseList<SuitePreset>(argv, 'presets', 'small')) {
  const config = suiteConfig(preset);
  for (const mode of parseList<Mode>(argv, 'modes', MODES.join(','))) {
    const loadBefore = machine().loadavg;
    const ours: ChildResult[] = [];
    const torch: ChildResult[] = [];
    for (let round = 0; round < rounds; round++) {
      const engineArgs = ['--import', 'tsx', suite, ...shapeArgs, '--preset', preset, '--child', mode];
      ours.push(await runChild(process.execPath, engineArgs, maxRssMb));
      const torchArgs = [reference, '--mode', mode, '--config', JSON.stringify(config), ...shapeArgs];
      torch.push(await runChild(python, torchArgs, maxRssMb));
    }
    const [a, b] = [summary(ours), summary(torch)];
    const line = {
      bench: 'compare',
      date: new Date().toISOString(),
      machine: { ...machine(), loadavgBefore: loadBefore },
      preset,
      params: countParams(config),
      mode,
      shapes,
      rounds,
      ours: a,
      torch: b,
      oursOverTorch: {
        tokensPerSecond: ratio(a?.tokensPerSecond, b?.tokensPerSecond),
        tokensPerCpuSecond: ratio(a?.tokensPerCpuSecond, b?.tokensPerCpuSecond),
        peakRss: ratio(a?.peakRssMiB, b?.peakRssMiB),
        setup: ratio(a?.setupMs, b?.setupMs),
      },
      runs: { ours, torch },
    };
    console.log(JSON.stringify(line));
  }
}
