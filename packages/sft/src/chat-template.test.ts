// SFT on conversations in a model's own chat template: a tiny Llama over a tiny HF BPE tokenizer with a ChatML
// template learns a task with a programmatic answer (reverse the letters), every assistant turn trained.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SftMetrics, type SftRow } from '@rlhf/contracts';
import { createRng, initParams, loadHfTokenizer, presetConfig, type Tokenizer } from '@rlhf/model';
import {
  tinyChatTokenizer,
  tinyChatTokenizerConfig,
  tinyChatTokenizerJson,
  tinyChatVocabSize,
} from '@rlhf/model/testing';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { framingOf, type ModelWeights, tokenizeConversation } from '@rlhf/stage-kit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { sftExample, trainSft } from './index.js';

const config = { ...presetConfig('tiny-llama'), vocabSize: tinyChatVocabSize('chatml'), maxPositions: 128 };
const model = (): ModelWeights => ({ config, params: initParams(config, 3) });

/** Conversations of a system turn and two questions, each answered by the letters reversed. */
function reversalRows(n: number): SftRow[] {
  const rng = createRng(11, 'reversal');
  const word = () =>
    Array.from(
      { length: 2 + Math.floor(rng.uniform() * 3) },
      () => 'abcd'[Math.floor(rng.uniform() * 4)],
    ).join('');
  return Array.from({ length: n }, () => {
    const [first, second] = [word(), word()];
    return {
      messages: [
        { role: 'system', content: 'R' },
        { role: 'user', content: first },
        { role: 'assistant', content: [...first].reverse().join('') },
        { role: 'user', content: second },
        { role: 'assistant', content: [...second].reverse().join('') },
      ],
    };
  });
}

let runtime: Runtime;
let chatml: Tokenizer;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
  chatml = await tinyChatTokenizer('chatml');
});
afterAll(() => runtime.close());

describe("SFT with a model's chat template", () => {
  test('inputs, targets and the loss mask of a conversation (hand-computed: loss on the assistant turn only)', () => {
    const ids = (text: string) => [...text].map((c) => c.charCodeAt(0) - 33); // GPT-2 byte order, printable
    const [start, end, nl] = [261, 262, 198];
    const context = [
      ...[start, ...ids('system'), nl, ...ids('S'), end, nl],
      ...[start, ...ids('user'), nl, ...ids('Hi'), end, nl],
      ...[start, ...ids('assistant'), nl],
    ];
    const answer = [...ids('Yo'), end, nl];
    const tokens = tokenizeConversation(
      framingOf(chatml),
      [
        { role: 'system', content: 'S' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Yo' },
      ],
      128,
      true,
    );
    const example = sftExample(tokens, true);
    const all = [...context, ...answer];
    expect(example.inputs).toEqual(all.slice(0, -1));
    expect(example.targets).toEqual(all.slice(1));
    // Target t is token t + 1: the 31 context tokens after the first are masked, Y o <|im_end|> \n learned.
    expect(example.lossMask).toEqual([...new Array(31).fill(0), 1, 1, 1, 1]);
    expect(sftExample(tokens, false).lossMask).toEqual(new Array(35).fill(1));
  });

  test('trains on an HF BPE tokenizer + ChatML template: held-out loss falls', async () => {
    const rows = reversalRows(320);
    const evalLosses: number[] = [];
    const trainLosses: number[] = [];
    const logs: string[] = [];
    const result = await trainSft({
      config: {
        maxSteps: 200,
        batchSize: 16,
        lr: 3e-3,
        warmupSteps: 5,
        maxSeqLen: 128,
        validationFraction: 0.1,
        evalEvery: 10,
        stepsPerCall: 10,
      },
      model: model(),
      rows,
      runtime,
      tokenizer: chatml,
      hooks: {
        onMetrics: (_step, values) => {
          if (values[SftMetrics.evalLoss] !== undefined) evalLosses.push(values[SftMetrics.evalLoss]);
          if (values[SftMetrics.loss] !== undefined) trainLosses.push(values[SftMetrics.loss]);
        },
        log: (message) => void logs.push(message),
      },
    });
    expect(result.step).toBe(200);
    expect(result.hyperparameters).toMatchObject({
      effective: {
        framing: { chatTemplate: 'model', templated: { bos: false, eos: false } },
        truncatedExamples: 0,
      },
    });
    expect(evalLosses).toHaveLength(21); // step 0, every 10 steps
    expect(trainLosses.at(-1)!).toBeLessThan(trainLosses[0]);
    // A model that knows the format (each letter token, then <|im_end|> and \n) but guesses every letter among
    // the four scores ln 4 per letter and 0 elsewhere: below that, it answers from the question (reverses it).
    let letters = 0;
    let trained = 0;
    for (const row of rows)
      for (const m of 'messages' in row ? row.messages : [])
        if (m.role === 'assistant') {
          letters += m.content.length;
          trained += m.content.length + 2;
        }
    const formatOnly = (letters * Math.log(4)) / trained;
    expect(evalLosses[0]).toBeGreaterThan(Math.log(263) - 0.5);
    expect(evalLosses.at(-1)!).toBeLessThan(0.8 * formatOnly);
  }, 240_000);

  test('a conversation the template refuses is an error naming the row', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sft-chat-'));
    try {
      await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tinyChatTokenizerJson('chatml')));
      const refusing =
        "{% for m in messages %}{% if m.content == 'dd' %}{{ raise_exception('no dd, please') }}{% endif %}" +
        '{{ m.role + m.content }}{% endfor %}';
      await writeFile(
        join(dir, 'tokenizer_config.json'),
        JSON.stringify({ ...tinyChatTokenizerConfig('chatml'), chat_template: refusing }),
      );
      const rows = reversalRows(3);
      rows[1] = {
        messages: [
          { role: 'user', content: 'dd' },
          { role: 'assistant', content: 'dd' },
        ],
      };
      await expect(
        trainSft({
          config: { maxSteps: 1, batchSize: 1 },
          model: model(),
          rows,
          runtime,
          tokenizer: await loadHfTokenizer(dir),
        }),
      ).rejects.toThrow(/^rows\[1\]\.messages: the model's chat template failed: .*no dd, please/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
