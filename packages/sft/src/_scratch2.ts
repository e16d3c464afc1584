import { readFileSync } from 'node:fs';
import { validateJsonl } from '@rlhf/contracts';
import { sortDigitsFiles } from '@rlhf/examples';
import { initParams, presetConfig } from '@rlhf/model';
import { createRuntime } from '@rlhf/runtime';
import { trainSft } from './index.js';
const runtime = await createRuntime({ device: 'cpu' });
const rows = (await validateJsonl('sft', readFileSync(sortDigitsFiles.sft, 'utf8'))).rows;
const config = presetConfig('tiny');
try {
  await trainSft({
    config: {
      maxSteps: 64,
      lr: 1,
      batchSize: 16,
      stepsPerCall: 8,
      schedule: 'constant',
      maxGradNorm: 0,
      evalEvery: 1000,
    },
    model: { config, params: initParams(config, 0) },
    rows,
    runtime,
    hooks: { onMetrics: (s, v) => console.log(s, v['train/loss'], v['train/grad_norm']) },
  });
} catch (e) {
  console.log('ERR', (e as Error).message);
}
await runtime.close();
