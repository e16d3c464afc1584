// A model's own Jinja chat template (tokenizer_config.json `chat_template` or chat_template.jinja), rendered with
// @huggingface/jinja and the variables transformers' apply_chat_template passes: `messages`,
// `add_generation_prompt`, the tokenizer's special tokens (`bos_token`, `eos_token`, ... as strings) and the
// globals `raise_exception` and `strftime_now`. Models without one use chat.ts's built-in format.
import { Template } from '@huggingface/jinja';
import { type ChatMessage, ChatTemplateError, validateMessages } from './chat.js';
import { BYTE_CHAT_TEMPLATE } from './hf-export.js';
import type { Tokenizer } from './tokenizer.js';

/** A parsed chat template and the special-token variables every render of it gets. */
export interface ModelChatTemplate {
  /** The Jinja source, as the model ships it. */
  source: string;
  /** `bos_token`, `eos_token`, `pad_token`, `unk_token`, `additional_special_tokens` ... as strings. */
  variables: Record<string, string | string[]>;
  parsed: Template;
}

/** A piece of a rendered conversation: an assistant turn's own text is trained, everything else is context. */
export interface ChatSpan {
  text: string;
  trained: boolean;
}

const SPECIAL_FIELDS = [
  'bos_token',
  'eos_token',
  'unk_token',
  'sep_token',
  'pad_token',
  'cls_token',
  'mask_token',
];

/** tokenizer_config.json stores a special token as a string or a serialized AddedToken ({ content }). */
function tokenString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  const content = (value as { content?: unknown } | null | undefined)?.content;
  return typeof content === 'string' ? content : undefined;
}

/** Parses a Jinja chat template; a syntax error is a ChatTemplateError naming `field`. */
export function parseChatTemplate(
  source: string,
  variables: Record<string, string | string[]> = {},
  field = 'chat_template',
): ModelChatTemplate {
  try {
    return { source, variables, parsed: new Template(source) };
  } catch (error) {
    throw new ChatTemplateError(`${field}: the chat template does not parse: ${(error as Error).message}`);
  }
}

/**
 * The tokenizer's own chat template, or undefined when it has none: the ByteTokenizer, an HF tokenizer without
 * `chat_template`, or one whose template is BYTE_CHAT_TEMPLATE (our exports' copy of the built-in format, which
 * keeps the built-in behaviour).
 */
export function modelChatTemplate(tokenizer: Tokenizer): ModelChatTemplate | undefined {
  const hf = tokenizer.hfFiles;
  if (hf?.chatTemplate === undefined || hf.chatTemplate === BYTE_CHAT_TEMPLATE) return undefined;
  const variables: Record<string, string | string[]> = {
    bos_token: hf.bosToken,
    eos_token: hf.eosToken,
    pad_token: hf.padToken,
  };
  for (const name of SPECIAL_FIELDS) {
    const value = tokenString(hf.tokenizerConfig[name]);
    if (value !== undefined) variables[name] = value;
  }
  const extra = hf.tokenizerConfig.additional_special_tokens;
  if (Array.isArray(extra))
    variables.additional_special_tokens = extra.map(tokenString).filter((t) => t !== undefined);
  return parseChatTemplate(hf.chatTemplate, variables);
}

/** Renders `messages` with the template; a failing render (the template's raise_exception included) names `field`. */
export function renderChatTemplate(
  template: ModelChatTemplate,
  messages: readonly ChatMessage[],
  addGenerationPrompt: boolean,
  field = 'messages',
): string {
  try {
    return template.parsed.render({
      ...template.variables,
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      add_generation_prompt: addGenerationPrompt,
    });
  } catch (error) {
    throw new ChatTemplateError(`${field}: the model's chat template failed: ${(error as Error).message}`);
  }
}

/** The prompt the model answers: the conversation (last turn not the assistant's) and the generation prompt. */
export function templateGenerationPrompt(
  template: ModelChatTemplate,
  messages: unknown,
  field = 'messages',
): string {
  const turns = validateMessages(messages, field);
  const last = turns.length - 1;
  if (turns[last].role === 'assistant')
    throw new ChatTemplateError(`${field}[${last}].role: a prompt must not end with an assistant turn`);
  return renderChatTemplate(template, turns, true, field);
}

/**
 * A conversation for training, cut into spans whose concatenation is the whole rendering. Every assistant turn is
 * trained (but one with `weight: 0`, OpenAI's context-only turn), the rest masked (transformers' `return_assistant_tokens_mask`, TRL's `assistant_only_loss`). Turn i's
 * span is found by rendering prefixes: it starts where render(messages[:i], add_generation_prompt) ends and ends
 * where render(messages[:i+1]) ends, so it holds the content and what the template writes after it (ChatML's
 * `<|im_end|>\n`, Llama 3's `<|eot_id|>`). A template that renders a prefix differently from the start of the
 * whole (one that rewrites earlier turns) cannot be split so and is an error.
 */
export function templateTrainingSpans(
  template: ModelChatTemplate,
  messages: unknown,
  field = 'messages',
): ChatSpan[] {
  const turns = validateMessages(messages, field);
  const last = turns.length - 1;
  if (turns[last].role !== 'assistant')
    throw new ChatTemplateError(
      `${field}[${last}].role: the last message must be the assistant's response, got "${turns[last].role}"`,
    );
  if (turns[0].role === 'assistant')
    throw new ChatTemplateError(`${field}[0].role: a conversation must not start with an assistant turn`);
  const whole = renderChatTemplate(template, turns, false, field);
  // Where the rendering of turns[:end] stops within the whole; `turn` is the assistant turn being located.
  const prefixEnd = (turn: number, end: number, addGenerationPrompt: boolean) => {
    const text = renderChatTemplate(template, turns.slice(0, end), addGenerationPrompt, field);
    if (!whole.startsWith(text))
      throw new ChatTemplateError(
        `${field}[${turn}]: the chat template does not render the conversation up to this assistant turn as the start of the whole (it rewrites earlier turns), so the turn cannot be located`,
      );
    return text.length;
  };
  const spans: ChatSpan[] = [];
  let at = 0;
  const push = (end: number, trained: boolean) => {
    if (end > at) spans.push({ text: whole.slice(at, end), trained });
    at = Math.max(at, end);
  };
  turns.forEach((turn, i) => {
    if (turn.role !== 'assistant') return;
    push(prefixEnd(i, i, true), false);
    push(prefixEnd(i, i + 1, false), turn.weight !== 0);
  });
  push(whole.length, false);
  return spans;
}

/**
 * A prompt conversation (ending in a user turn) and one assistant response to it, as the template renders them:
 * the prompt through the generation prompt, the response with what the template writes after it (its turn end).
 * For preference and ranked rows, whose responses share the prompt.
 */
export function templatePromptResponse(
  template: ModelChatTemplate,
  messages: unknown,
  response: string,
  field = 'messages',
): { prompt: string; response: string } {
  const prompt = templateGenerationPrompt(template, messages, field);
  const turns = [...validateMessages(messages, field), { role: 'assistant' as const, content: response }];
  const whole = renderChatTemplate(template, turns, false, field);
  if (!whole.startsWith(prompt))
    throw new ChatTemplateError(
      `${field}: the chat template does not render the prompt with its generation prompt as the start of the answered conversation`,
    );
  return { prompt, response: whole.slice(prompt.length) };
}
