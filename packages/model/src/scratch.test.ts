import { createRuntime } from '@rlhf/runtime';
import { it } from 'vitest';
import { initParams, presetConfig } from './config.js';
import { createGenerator } from './generate.js';
it('gen smoke', async () => {
  const rt = await createRuntime({ device: 'cpu' });
  const config = presetConfig('tiny', { vocabSize: 11, maxPositions: 16, nEmbd: 8, nHead: 2 });
  const params = initParams(config, 1);
  for (const p of params.values()) for (let i = 0; i < p.length; i++) p[i] *= 30;
  const gen = await createGenerator(rt, config);
  for (const temperature of [0, 1]) {
    const out = await gen.generate({ params, prompts: [[1, 2, 3], [4], [5, 6]], maxNewTokens: 6, temperature, eosId: 3, padId: 10, seed: 1 });
    console.log(JSON.stringify(out));
  }
  await rt.close();
});
