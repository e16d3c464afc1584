import { readFileSync } from 'node:fs';
import { validateJsonl } from '@rlhf/contracts';
import { groundTruthScore, sortDigitsFiles } from '@rlhf/examples';
import { ByteTokenizer, createGenerator, initParams, presetConfig } from '@rlhf/model';
import { createRuntime } from '@rlhf/runtime';
import { trainSft } from './index.js';

const steps = Number(process.argv[2] ?? 100);
const lr = Number(process.argv[3] ?? 1e-3);
const B = Number(process.argv[4] ?? 32);
const runtime = await createRuntime({ device: 'cpu' });
const parsed = await validateJsonl('sft', readFileSync(sortDigitsFiles.sft, 'utf8'));
const rows = parsed.rows;
const config = presetConfig('tiny');
const params = initParams(config, 0);
const tok = new ByteTokenizer();
const t0 = performance.now();
const res = await trainSft({
  config: {
    maxSteps: steps,
    lr,
    batchSize: B,
    stepsPerCall: 16,
    warmupSteps: 10,
    evalEvery: 50,
    checkpointEvery: 1000,
    validationFraction: 0.05,
    schedule: 'cosine',
    weightDecay: 0.0,
  },
  model: { config, params },
  rows,
  runtime,
  hooks: {
    onMetrics: (s, v) => {
      if (s % 16 === 0 || 'eval/loss' in v) console.log(s, JSON.stringify(v));
    },
  },
});
console.log(
  'train s',
  (performance.now() - t0) / 1000,
  res.summary,
  JSON.stringify(res.hyperparameters.effective),
);
const gen = await createGenerator(runtime, config);
const prompts = rows.slice(-40).map((r) => ('prompt' in r ? r.prompt : ''));
for (const [name, p] of [
  ['init', params],
  ['sft', res.model.params],
] as const) {
  const out = await gen.generate({
    params: p,
    prompts: prompts.map((x) => [256, ...tok.encode(x)]),
    maxNewTokens: 14,
    temperature: 0,
    eosId: 257,
    padId: 258,
  });
  const texts = out.tokens.map((t, i) =>
    tok.decode(
      t.slice(
        0,
        out.mask[i].reduce((a, b) => a + b, 0),
      ),
      { skipSpecialTokens: true },
    ),
  );
  const score = texts.reduce((s, t, i) => s + groundTruthScore(prompts[i], t), 0) / texts.length;
  console.log(name, score, out.finished.filter(Boolean).length, texts.slice(0, 5));
}
await gen.release();
await runtime.close();
import { saveCheckpoint } from '@rlhf/model';
await saveCheckpoint(`/tmp/sft-${steps}`, res.model.config, res.model.params);
