import { generatePromptRows, groundTruthScore } from '@rlhf/examples';
import { resolvePpoConfig } from '@rlhf/contracts';
import { createGenerator, ByteTokenizer } from '@rlhf/model';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import type { ModelWeights } from '@rlhf/stage-kit';
import { test } from 'vitest';
import { defaultFixtureSettings, rewardModel, sftPolicy } from './testing/sort-digits.js';
import { trainPpo } from './train.js';

const tok = new ByteTokenizer();
async function gtEval(runtime: Runtime, policy: ModelWeights) {
  const prompts = generatePromptRows(256, { seed: 1234 });
  const gen = await createGenerator(runtime, policy.config);
  let total = 0;
  for (const seed of [1, 2]) {
    const out = await gen.generate({
      params: policy.params,
      prompts: prompts.map((p) => [tok.bosId, ...tok.encode(p.prompt)]),
      maxNewTokens: 12,
      eosId: tok.eosId,
      padId: tok.padId,
      seed,
    });
    total += out.tokens.reduce(
      (a, r, b) =>
        a +
        groundTruthScore(
          prompts[b].prompt,
          tok.decode(
            r.filter((_, i) => out.mask[b][i]),
            { skipSpecialTokens: true },
          ),
        ),
      0,
    );
  }
  await gen.release();
  return total / 512;
}

test('scratch', async () => {
  const runtime = await createRuntime({ device: 'cpu' });
  const policy = await sftPolicy(runtime);
  const rm = await rewardModel(runtime);
  console.log('SFT GT', await gtEval(runtime, policy));
  const prompts = generatePromptRows(500, { seed: 11 });
  const env = process.env;
  for (const beta of (env.BETAS ?? '0.2,0').split(',').map(Number)) {
    const t = performance.now();
    const kls: number[] = [];
    const res = await trainPpo({
      config: resolvePpoConfig({
        iterations: Number(env.ITERS ?? 15),
        rolloutBatchSize: Number(env.B ?? 64),
        minibatches: Number(env.MB ?? 2),
        ppoEpochs: Number(env.EPOCHS ?? 4),
        maxNewTokens: 12,
        lr: Number(env.LR ?? 5e-4),
        kl:
          beta === 0
            ? { coef: 0 }
            : {
                coef: beta,
                type: (env.KLTYPE ?? 'adaptive') as 'fixed',
                target: Number(env.TARGET ?? 1.5),
                horizon: Number(env.HORIZON ?? 640),
              },
      }),
      policy,
      rewardModel: rm,
      prompts,
      runtime,
      groundTruth: groundTruthScore,
      hooks: {
        onMetrics: (s, m) => {
          kls.push(m['objective/kl']);
          console.log(
            s,
            [
              'objective/kl',
              'objective/scores',
              'objective/ground_truth',
              'kl_ctl/value',
              'policy/approxkl',
              'timing/step',
            ]
              .map((k) => `${k.split('/')[1]}=${m[k].toFixed(3)}`)
              .join(' '),
          );
        },
      },
    });
    const last = kls.slice(-5);
    console.log(
      'beta',
      beta,
      'sec',
      (performance.now() - t) / 1000,
      'GT',
      await gtEval(runtime, res.model),
      'KL last5',
      last.reduce((a, x) => a + x, 0) / last.length,
    );
  }
  await runtime.close();
}, 900_000);
