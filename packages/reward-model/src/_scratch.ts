import { readFileSync } from 'node:fs';
import { validateJsonl } from '@rlhf/contracts';
import { sortDigitsFiles } from '@rlhf/examples';
import { initParams, loadCheckpoint, presetConfig } from '@rlhf/model';
import { createRuntime } from '@rlhf/runtime';
import { evaluateRewardModel, trainRewardModel } from './index.js';

const kind = process.argv[2] as 'preference' | 'ranked' | 'rankedAsPairs';
const steps = Number(process.argv[3] ?? 100);
const lr = Number(process.argv[4] ?? 1e-3);
const B = Number(process.argv[5] ?? 16);
const runtime = await createRuntime({ device: 'cpu' });
const pref = (await validateJsonl('preference', readFileSync(sortDigitsFiles.preference, 'utf8'))).rows;
const ranked = (await validateJsonl('ranked', readFileSync(sortDigitsFiles.ranked, 'utf8'))).rows;
const config = presetConfig('tiny');
const params = process.env.SFT ? (await loadCheckpoint(process.env.SFT)).params : initParams(config, 0);
let rows;
let test;
if (kind === 'gen') {
  const { generateRankedRows } = await import('@rlhf/examples');
  rows = generateRankedRows(Number(process.env.N ?? 3200), { seed: 99 });
  test = ranked.slice(800);
} else if (kind === 'mixed') {
  rows = [...ranked.slice(0, 800), ...pref];
  test = ranked.slice(800);
} else if (kind === 'overfit') {
  rows = ranked.slice(0, 64);
  test = rows;
} else if (kind === 'preference') {
  rows = pref.slice(0, 1800);
  test = pref.slice(1800);
} else {
  const tr = ranked.slice(0, 800);
  test = ranked.slice(800);
  rows =
    kind === 'ranked'
      ? tr
      : tr.flatMap((r) => {
          const out = [];
          for (let i = 0; i < r.responses.length; i++)
            for (let j = i + 1; j < r.responses.length; j++)
              out.push({ prompt: r.prompt, chosen: r.responses[i], rejected: r.responses[j] });
          return out;
        });
}
const t0 = performance.now();
const res = await trainRewardModel({
  config: {
    maxSteps: steps,
    lr,
    batchSize: B,
    stepsPerCall: 16,
    warmupSteps: 10,
    evalEvery: 64,
    checkpointEvery: 1000,
    validationFraction: 0.05,
    schedule: 'cosine',
    seed: Number(process.env.SEED ?? 42),
    init: process.env.SFT ? 'sft' : 'fresh',
  },
  model: { config, params },
  rows,
  runtime,
  hooks: {
    onMetrics: (s, v) => {
      if ('eval/loss' in v) console.log(s, JSON.stringify(v));
    },
  },
});
console.log(
  'train s',
  (performance.now() - t0) / 1000,
  res.summary,
  JSON.stringify(res.hyperparameters.effective),
);
const ev = await evaluateRewardModel({ model: res.model, rows: test, runtime });
console.log('trainacc', (await evaluateRewardModel({ model: res.model, rows, runtime })).accuracy);
console.log('pref', (await evaluateRewardModel({ model: res.model, rows: pref, runtime })).accuracy);
console.log('test', ev);
await runtime.close();
// failure analysis
import { createScorer, ByteTokenizer } from '@rlhf/model';
import { groundTruthScore } from '@rlhf/examples';
const rt2 = await createRuntime({ device: 'cpu' });
const scorer = await createScorer(rt2, res.model.config, { outputs: ['scores'] });
const tok = new ByteTokenizer();
const fails: Record<string, number> = {};
for (const r of test.slice(0, 100)) {
  const resp = 'responses' in r ? r.responses : [r.chosen, r.rejected];
  const n = Math.max(...resp.map((x) => x.length)) + 1;
  const out = await scorer.score({
    params: res.model.params,
    prompts: resp.map(() => [256, ...tok.encode(r.prompt)]),
    padId: 258,
    responses: resp.map((x) => [...tok.encode(x), 257, ...new Array(n - x.length - 1).fill(258)]),
    responseMask: resp.map((x) => [
      ...new Array(x.length + 1).fill(1),
      ...new Array(n - x.length - 1).fill(0),
    ]),
  });
  const s = out.scores!;
  for (let i = 0; i < resp.length; i++)
    for (let j = i + 1; j < resp.length; j++)
      if (s[i] <= s[j]) {
        const key = `${groundTruthScore(r.prompt, resp[i]).toFixed(2)} vs ${groundTruthScore(r.prompt, resp[j]).toFixed(2)}`;
        console.log(
          'FAIL',
          r.prompt,
          JSON.stringify(resp[i]),
          JSON.stringify(resp[j]),
          key,
          s[i].toFixed(2),
          s[j].toFixed(2),
        );
      }
}
await rt2.close();
