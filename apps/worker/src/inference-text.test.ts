import { ByteTokenizer } from '@rlhf/model';
import { tinyChatTokenizer } from '@rlhf/model/testing';
import { describe, expect, test } from 'vitest';
import { CompletionText, PromptError, promptIds } from './inference-text.js';

const tokenizer = new ByteTokenizer();
const bytes = (text: string) => [...Buffer.from(text, 'utf8')];
const zeros = (ids: number[]) => ids.map(() => -0.5);

describe('CompletionText', () => {
  test('a stop sequence split across chunks: the text before it is released, the start of it held back', () => {
    const text = new CompletionText(tokenizer, ['STOP'], 100);
    expect(text.push(bytes('ab'), zeros(bytes('ab'))).text).toBe('ab');
    expect(text.push(bytes('cST'), zeros(bytes('cST'))).text).toBe('c'); // 'ST' may begin STOP
    const last = text.push(bytes('OPd'), zeros(bytes('OPd')));
    expect(last.text).toBe('');
    expect(text.finishReason).toBe('stop');
    expect(text.tokens).toEqual(bytes('abcS')); // up to the token that starts the stop sequence
  });

  test('held back text that turns out not to be a stop sequence is released', () => {
    const text = new CompletionText(tokenizer, ['STOP'], 100);
    expect(text.push(bytes('aS'), zeros(bytes('aS'))).text).toBe('a');
    expect(text.push(bytes('x'), zeros(bytes('x'))).text).toBe('Sx');
  });

  test('an unfinished UTF-8 character waits for its last byte; logprobs follow the released tokens', () => {
    const text = new CompletionText(tokenizer, [], 100);
    const [lead, tail] = bytes('é');
    const first = text.push([lead], [-1]);
    expect(first).toEqual({ text: '', logprobs: [] });
    const second = text.push([tail], [-2]);
    expect(second.text).toBe('é');
    expect(second.logprobs.map((t) => t.logprob)).toEqual([-1, -2]);
  });

  test('EOS ends with stop, the token limit with length', () => {
    const eos = new CompletionText(tokenizer, [], 100);
    expect(eos.push([...bytes('hi'), tokenizer.eosId, 65], [-1, -1, -1, -1]).text).toBe('hi');
    expect(eos.finishReason).toBe('stop');
    expect(eos.tokens).toHaveLength(2);
    const length = new CompletionText(tokenizer, [], 2);
    expect(length.push(bytes('abc'), zeros(bytes('abc'))).text).toBe('ab');
    expect(length.finishReason).toBe('length');
  });
});

describe('promptIds', () => {
  test("chat turns in the trainers' template after BOS; completions as they are", () => {
    const chat = promptIds(tokenizer, { kind: 'chat', messages: [{ role: 'user', content: 'Hi' }] });
    expect(chat.prompts).toEqual([[tokenizer.bosId, ...bytes('<|user|>\nHi\n<|assistant|>\n')]]);
    const text = promptIds(tokenizer, { kind: 'completion', prompts: ['a', 'bc'] });
    expect(text.prompts).toEqual([
      [tokenizer.bosId, 97],
      [tokenizer.bosId, 98, 99],
    ]);
  });

  test('a conversation ending with the assistant is a PromptError on messages', () => {
    expect(() =>
      promptIds(tokenizer, { kind: 'chat', messages: [{ role: 'assistant', content: 'x' }] }),
    ).toThrow(PromptError);
  });

  test("a model's own chat template renders chat turns, with the tokenizer's bos framing", async () => {
    const chatml = await tinyChatTokenizer('chatml');
    const [ids] = promptIds(chatml, {
      kind: 'chat',
      messages: [
        { role: 'system', content: 'S' },
        { role: 'user', content: 'Hi' },
      ],
    }).prompts;
    expect(chatml.decode(ids)).toBe(
      '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(ids[0]).toBe(261); // <|im_start|>: ChatML adds no bos
    const llama3 = await tinyChatTokenizer('llama3');
    const [chat] = promptIds(llama3, { kind: 'chat', messages: [{ role: 'user', content: 'Hi' }] }).prompts;
    expect(chat.filter((id) => id === llama3.bosId)).toEqual([261]); // the template's, not a second one
    expect(promptIds(llama3, { kind: 'completion', prompts: ['Hi'] }).prompts).toEqual([[261, 39, 72]]);
    expect(() => promptIds(llama3, { kind: 'chat', messages: [] })).toThrow(PromptError);
  });
});
