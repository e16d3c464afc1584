// The engine's side of a parity check of the PyTorch reference (bench/reference/parity.py): random weights of a
// tiny preset and the engine's logits for two rows, written as JSON for the reference to load and compare.
// Run: npx tsx bench/reference/parity.ts --preset tiny-qwen3 --out /tmp/parity.json
import { writeFile } from 'node:fs/promises';
import { createForward, initParams, paramShapes } from '@rlhf/model';
import { createRuntime } from '@rlhf/runtime';
import { argOf, type SuitePreset, suiteConfig, tokenRows } from '../suite/shapes.js';

const argv = process.argv.slice(2);
const config = suiteConfig(argOf(argv, 'preset', 'tiny') as SuitePreset);
const params = initParams(config, 1);
const rows = tokenRows(2, 10, config.vocabSize, 1);
const runtime = await createRuntime({ device: 'cpu' });
const forward = await createForward(runtime, config);
const out = await forward.run(params, rows);
await forward.release();
await runtime.close();
const weights = paramShapes(config).map(({ name, shape }) => {
  const data = params.get(name)!;
  return {
    name,
    shape,
    base64: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'),
  };
});
const logits = out.map((row) => [...row.logits]);
await writeFile(argOf(argv, 'out', '/tmp/parity.json'), JSON.stringify({ config, rows, weights, logits }));
