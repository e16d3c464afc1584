// Conversational prompts of preference and ranked rows (TRL's conversational prompt), and the framing schema.
import { describe, expect, it } from 'vitest';
import { checkStageConfig } from './configs.js';
import { datasetRowErrors } from './datasets.js';

const conversation = [
  { role: 'system', content: 'Sort.' },
  { role: 'user', content: '3 1 2' },
];

describe('conversation prompts of preference and ranked rows', () => {
  it('accepts a prompt that is a conversation ending in a user turn', () => {
    expect(
      datasetRowErrors('preference', { prompt: conversation, chosen: '1 2 3', rejected: '3 2 1' }),
    ).toEqual([]);
    expect(datasetRowErrors('ranked', { prompt: conversation, responses: ['1 2 3', '1 3 2'] })).toEqual([]);
  });

  it('names the turn that is out of place', () => {
    const answered = [...conversation, { role: 'assistant', content: '1 2 3' }];
    expect(datasetRowErrors('preference', { prompt: answered, chosen: 'a', rejected: 'b' })).toEqual([
      { path: '/prompt/2/role', message: 'the last message must be the user turn the responses answer' },
    ]);
    const late = [{ role: 'user', content: 'a' }, ...conversation];
    expect(datasetRowErrors('ranked', { prompt: late, responses: ['a', 'b'] })).toEqual([
      { path: '/prompt/1/role', message: 'a system message may only come first' },
    ]);
    expect(datasetRowErrors('preference', { prompt: [], chosen: 'a', rejected: 'b' })).not.toEqual([]);
  });
});

describe('framing config', () => {
  it('is optional everywhere a dataset is read, and closed', () => {
    expect(checkStageConfig('sft', {}).config).not.toHaveProperty('framing');
    for (const kind of ['sft', 'reward_model', 'dpo', 'pro', 'raft', 'grpo', 'ppo'] as const)
      expect(checkStageConfig(kind, { framing: { chatTemplate: 'builtin', addBos: false } }).errors).toEqual(
        [],
      );
    expect(checkStageConfig('dpo', { framing: { addBos: 'yes' } }, '/stages/1/config').errors[0].path).toBe(
      '/stages/1/config/framing/addBos',
    );
    expect(checkStageConfig('sft', { framing: { template: 'x' } }).errors).not.toEqual([]);
  });
});
