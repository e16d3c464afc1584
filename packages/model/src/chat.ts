/**
 * Chat template for `messages`-style data. Every turn is rendered as
 *
 *   <|{role}|>\n{content}\n
 *
 * in order, and the prompt ends with the header of the turn the model writes:
 *
 *   messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' },
 *               { role: 'assistant', content: 'Hello!' }]
 *   prompt   = '<|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\n'
 *   response = 'Hello!'
 *
 * The response is the last assistant turn's content, without a trailing newline: its end is marked
 * by the tokenizer's eos token, which the trainer appends after tokenizing (not part of the text).
 * Earlier assistant turns are part of the prompt. A system message may only come first.
 */

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
  /** Assistant turns of training conversations: 0 = context only (not trained); default 1 (OpenAI's `weight`). */
  weight?: 0 | 1;
}

export class ChatTemplateError extends Error {
  override name = 'ChatTemplateError';
}

const ROLES: readonly string[] = ['system', 'user', 'assistant'];

/** Checks that `messages` is a non-empty array of { role, content }; errors name the bad field. */
export function validateMessages(messages: unknown, field = 'messages'): ChatMessage[] {
  if (!Array.isArray(messages)) throw new ChatTemplateError(`${field}: expected an array of messages`);
  if (messages.length === 0) throw new ChatTemplateError(`${field}: expected at least one message`);
  messages.forEach((message: unknown, i) => {
    const at = `${field}[${i}]`;
    if (!message || typeof message !== 'object') throw new ChatTemplateError(`${at}: expected an object`);
    const { role, content } = message as { role?: unknown; content?: unknown };
    if (typeof role !== 'string' || !ROLES.includes(role)) {
      throw new ChatTemplateError(
        `${at}.role: expected one of ${ROLES.join(', ')}, got ${JSON.stringify(role)}`,
      );
    }
    if (typeof content !== 'string') {
      throw new ChatTemplateError(`${at}.content: expected a string, got ${typeof content}`);
    }
    if (role === 'system' && i !== 0) {
      throw new ChatTemplateError(`${at}.role: a system message may only be the first message`);
    }
    const { weight } = message as { weight?: unknown };
    if (weight !== undefined && (role !== 'assistant' || (weight !== 0 && weight !== 1)))
      throw new ChatTemplateError(`${at}.weight: only assistant turns have a weight, 0 or 1`);
  });
  return messages as ChatMessage[];
}

function renderTurns(messages: readonly ChatMessage[]): string {
  return messages.map((m) => `<|${m.role}|>\n${m.content}\n`).join('');
}

/** The prompt for the model to answer next: all turns, then the assistant header. Last turn must not be the assistant's. */
export function chatPrompt(messages: unknown, field = 'messages'): string {
  const turns = validateMessages(messages, field);
  const last = turns.length - 1;
  if (turns[last].role === 'assistant') {
    throw new ChatTemplateError(`${field}[${last}].role: a prompt must not end with an assistant turn`);
  }
  return `${renderTurns(turns)}<|assistant|>\n`;
}

/** Splits a conversation into prompt text and response text (the last turn, which must be the assistant's). */
export function chatPromptResponse(
  messages: unknown,
  field = 'messages',
): { prompt: string; response: string } {
  const turns = validateMessages(messages, field);
  const last = turns.length - 1;
  if (turns[last].role !== 'assistant') {
    throw new ChatTemplateError(
      `${field}[${last}].role: the last message must be the assistant's response, got "${turns[last].role}"`,
    );
  }
  if (last === 0)
    throw new ChatTemplateError(`${field}: expected a user turn before the assistant's response`);
  return { prompt: chatPrompt(turns.slice(0, last), field), response: turns[last].content };
}
