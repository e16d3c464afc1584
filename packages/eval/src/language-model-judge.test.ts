// The language-model judge's mechanics on a real model (the sort-digits SFT fixture stands in for a judge: its
// verdicts mean nothing, but the prompt layout, the answer log-probs and both orders are real).
import { generatePromptRows } from '@rlhf/examples';
import { chatPrompt, createScorer } from '@rlhf/model';
import { sftPolicy } from '@rlhf/ppo/testing';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import type { ModelWeights } from '@rlhf/stage-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLanguageModelJudge, renderJudgePrompt, twoAnswerPreference } from './language-model-judge.js';
import { swappedVerdicts } from './position-bias.js';

let runtime: Runtime;
let sft: ModelWeights;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
  sft = await sftPolicy(runtime);
}, 1_200_000);
afterAll(() => runtime.close());

const requests = generatePromptRows(12, { seed: 31 }).map((row, i) => ({
  prompt: (row as { prompt: string }).prompt,
  first: i % 2 === 0 ? ' 1 2 3' : ' 9 8',
  second: i % 3 === 0 ? ' 3 2 1' : ' 4',
}));

describe('renderJudgePrompt and twoAnswerPreference', () => {
  it('fills the template in one pass and wraps it as a user turn', () => {
    const request = { prompt: 'sort 2 1:', first: ' {second}', second: ' 1 2' };
    expect(renderJudgePrompt('{prompt}|{first}|{second}', request, false)).toBe('sort 2 1:| {second}| 1 2');
    expect(renderJudgePrompt('{prompt}?', request, true)).toBe(
      chatPrompt([{ role: 'user', content: 'sort 2 1:?' }]),
    );
  });
  it('renormalises over the two answers', () => {
    expect(twoAnswerPreference(Math.log(0.3), Math.log(0.1))).toBeCloseTo(0.75, 12);
    expect(twoAnswerPreference(-2, -2)).toBe(0.5);
  });
});

describe('createLanguageModelJudge on a real model', () => {
  it('reads P(first) from the log-probs of "A" and "B" after the rendered prompt', async () => {
    const template = '{prompt}{first} or{second}?';
    const { judge, release } = await createLanguageModelJudge({ runtime, model: sft, template, chat: false });
    try {
      const answers = await judge(requests);
      expect(answers).toHaveLength(requests.length);
      // Independently: the scorer's log-prob of the byte 'A' vs 'B' after [bos] + the filled template.
      const scorer = await createScorer(runtime, sft.config, { outputs: ['logprobs'] });
      try {
        const bos = 256;
        const prompt = [
          bos,
          ...Buffer.from(`${requests[0].prompt}${requests[0].first} or${requests[0].second}?`),
        ];
        const { logprobs } = await scorer.score({
          params: sft.params,
          prompts: [prompt, prompt],
          padId: 258,
          responses: [[65], [66]],
          responseMask: [[1], [1]],
        });
        expect(answers[0]).toBeCloseTo(1 / (1 + Math.exp(logprobs![1][0] - logprobs![0][0])), 6);
      } finally {
        await scorer.release();
      }
      // Batching and padding do not change a verdict.
      const { judge: oneByOne, release: releaseOne } = await createLanguageModelJudge({
        runtime,
        model: sft,
        template,
        chat: false,
        batchSize: 1,
      });
      try {
        const single = await oneByOne(requests);
        single.forEach((p, i) => {
          expect(p).toBeCloseTo(answers[i], 5);
        });
      } finally {
        await releaseOne();
      }
    } finally {
      await release();
    }
  }, 600_000);
  it('judges both orders through swappedVerdicts and reports its position bias', async () => {
    const { judge, release } = await createLanguageModelJudge({
      runtime,
      model: sft,
      template: '{first}{second}',
    });
    try {
      const result = await swappedVerdicts(
        judge,
        requests.map((r) => ({ prompt: r.prompt, a: r.first, b: r.second })),
      );
      console.log(`SFT fixture as a judge: position bias ${JSON.stringify(result.positionBias)}`);
      for (const row of result.rows) {
        expect(row.pAFirst).toBeGreaterThan(0);
        expect(row.pAFirst).toBeLessThan(1);
      }
      expect(result.positionBias.meanFirstPreference).toBeGreaterThan(0);
    } finally {
      await release();
    }
  }, 600_000);
  it('refuses a reward model and empty answers', async () => {
    await expect(
      createLanguageModelJudge({ runtime, model: { ...sft, config: { ...sft.config, scalarHead: true } } }),
    ).rejects.toThrow(/language model/);
    await expect(createLanguageModelJudge({ runtime, model: sft, answers: ['', 'B'] })).rejects.toThrow(
      /empty/,
    );
  });
});
