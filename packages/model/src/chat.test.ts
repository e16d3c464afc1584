import { describe, expect, it } from 'vitest';
import { ChatTemplateError, chatPrompt, chatPromptResponse } from './chat.js';

describe('chat template', () => {
  it('renders turns and splits off the last assistant turn as the response', () => {
    const { prompt, response } = chatPromptResponse([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'Bye' },
      { role: 'assistant', content: 'See you.' },
    ]);
    expect(prompt).toBe(
      '<|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\nHello!\n<|user|>\nBye\n<|assistant|>\n',
    );
    expect(response).toBe('See you.');
  });

  it('builds a generation prompt from a conversation that ends with the user', () => {
    expect(chatPrompt([{ role: 'user', content: 'Add 2+2' }])).toBe('<|user|>\nAdd 2+2\n<|assistant|>\n');
  });

  it('names the bad field in validation errors', () => {
    expect(() => chatPrompt('hi')).toThrow('messages: expected an array of messages');
    expect(() => chatPrompt([])).toThrow('messages: expected at least one message');
    expect(() => chatPrompt([{ role: 'bot', content: 'x' }])).toThrow(/messages\[0\]\.role: expected one of/);
    expect(() => chatPrompt([{ role: 'user', content: 3 }])).toThrow(
      'messages[0].content: expected a string',
    );
    expect(() => chatPrompt([null])).toThrow('messages[0]: expected an object');
    expect(() =>
      chatPrompt([
        { role: 'user', content: 'a' },
        { role: 'system', content: 'b' },
      ]),
    ).toThrow(/messages\[1\]\.role: a system message may only be the first/);
    expect(() => chatPrompt([{ role: 'assistant', content: 'a' }], 'rows[3].messages')).toThrow(
      /rows\[3\]\.messages\[0\]\.role: a prompt must not end with an assistant turn/,
    );
    expect(() => chatPromptResponse([{ role: 'user', content: 'a' }])).toThrow(
      /messages\[0\]\.role: the last message must be the assistant's response/,
    );
    expect(() => chatPromptResponse([{ role: 'assistant', content: 'a' }])).toThrow(ChatTemplateError);
  });
});
