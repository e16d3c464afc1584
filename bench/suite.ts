// The engine at real model sizes (issue 11): generation tokens/s, one SFT train step tokens/s (unfused: one step
// per run; fused: K steps in one run), one full PPO iteration (generate + score + fused update), session set-up
// time and peak RSS, each measurement in its own child process. Prints one JSON line per measurement.
// bench/compare.ts runs the same measurements interleaved with the PyTorch reference (bench/reference/suite.py).
// Run: npx tsx bench/suite.ts [--presets small,gpt2,qwen3-0.6b] [--modes generate,sft-unfused,sft-fused,ppo]
//   [--batch 32] [--prompt 32] [--new-tokens 64] [--sft-batch 8] [--seq 128] [--fused-steps 4] [--ppo-epochs 4]
//   [--minibatches 1] [--calls 3] [--threads <cores>] [--max-rss-mb 21000]
import { fileURLToPath } from 'node:url';
import { countParams } from '@rlhf/model';
import { runChild } from './suite/child.js';
import { measure } from './suite/ours.js';
import {
  argOf,
  MODES,
  type Mode,
  machine,
  parseList,
  parseShapes,
  type SuitePreset,
  suiteConfig,
} from './suite/shapes.js';

const argv = process.argv.slice(2);
const shapes = parseShapes(argv);
const child = argv.indexOf('--child');

if (child >= 0) {
  const config = suiteConfig(argOf(argv, 'preset', 'small') as SuitePreset);
  const result = await measure(argv[child + 1] as Mode, config, shapes);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  const self = fileURLToPath(import.meta.url);
  const maxRssMb = Number(argOf(argv, 'max-rss-mb', '21000'));
  for (const preset of parseList<SuitePreset>(argv, 'presets', 'small')) {
    const params = countParams(suiteConfig(preset));
    for (const mode of parseList<Mode>(argv, 'modes', MODES.join(','))) {
      const args = [...process.execArgv, self, ...argv, '--preset', preset, '--child', mode];
      const result = await runChild(process.execPath, args, maxRssMb);
      const line = { bench: 'suite', date: new Date().toISOString(), machine: machine(), preset, params };
      console.log(JSON.stringify({ ...line, shapes, ...result }));
    }
  }
}
