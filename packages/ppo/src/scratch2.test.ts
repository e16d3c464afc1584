import { generatePromptRows, groundTruthScore } from '@rlhf/examples';
import { createGenerator, createScorer, ByteTokenizer } from '@rlhf/model';
import { createRuntime } from '@rlhf/runtime';
import { test } from 'vitest';
import { defaultFixtureSettings, rewardModel, sftPolicy } from './testing/sort-digits.js';

test('scratch2', async () => {
  const runtime = await createRuntime({ device: 'cpu' });
  const tok = new ByteTokenizer();
  const prompts = generatePromptRows(256, { seed: 11 });
  for (const rmSteps of [300, 800]) {
    const fx = { ...defaultFixtureSettings, sftSteps: 600, rmSteps };
    const policy = await sftPolicy(runtime, fx);
    let t = performance.now();
    const rm = await rewardModel(runtime, fx);
    const sec = (performance.now() - t) / 1000;
    const gen = await createGenerator(runtime, policy.config);
    const scorer = await createScorer(runtime, rm.config, { outputs: ['scores'] });
    const p = prompts.map((p) => [tok.bosId, ...tok.encode(p.prompt)]);
    const out = await gen.generate({ params: policy.params, prompts: p, maxNewTokens: 12, temperature: 1, eosId: tok.eosId, padId: tok.padId, seed: 1 });
    const texts = out.tokens.map((r, b) => tok.decode(r.filter((_, i) => out.mask[b][i]), { skipSpecialTokens: true }));
    const gt = texts.map((x, b) => groundTruthScore(prompts[b].prompt, x));
    const s = (await scorer.score({ params: rm.params, prompts: p, padId: tok.padId, responses: out.tokens, responseMask: out.mask })).scores!;
    let agree = 0, n = 0;
    for (let i = 0; i < s.length; i++) for (let j = 0; j < i; j++) if (Math.abs(gt[i] - gt[j]) > 0.05) { n++; if ((s[i] - s[j]) * (gt[i] - gt[j]) > 0) agree++; }
    console.log({ rmSteps, sec, pairAgreement: agree / n, meanScore: s.reduce((a, x) => a + x, 0) / s.length });
  }
  await runtime.close();
}, 600_000);
