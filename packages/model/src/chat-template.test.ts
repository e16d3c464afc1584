// A model's own chat template against strings written out by hand for two real-world styles.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatTemplateError, chatPrompt } from './chat.js';
import {
  type ModelChatTemplate,
  modelChatTemplate,
  parseChatTemplate,
  renderChatTemplate,
  templateGenerationPrompt,
  templateTrainingSpans,
} from './chat-template.js';
import { BYTE_CHAT_TEMPLATE, byteTokenizerConfig, byteTokenizerJson } from './hf-export.js';
import { tinyChatTokenizerConfig, writeTinyChatTokenizer } from './testing/tiny-chat.js';
import { tinyGpt2TokenizerJson } from './testing/tiny-hf.js';
import { ByteTokenizer, loadHfTokenizer, type Tokenizer } from './tokenizer.js';

const conversation = [
  { role: 'system' as const, content: 'Be brief.' },
  { role: 'user' as const, content: 'Hi' },
  { role: 'assistant' as const, content: 'Hello!' },
  { role: 'user' as const, content: 'Bye' },
  { role: 'assistant' as const, content: 'See you.' },
];

let dir: string;
const tokenizers: Record<string, Tokenizer> = {};
const templates: Record<string, ModelChatTemplate> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chat-template-'));
  for (const style of ['chatml', 'llama3'] as const) {
    await writeTinyChatTokenizer(join(dir, style), style);
    tokenizers[style] = await loadHfTokenizer(join(dir, style));
    templates[style] = modelChatTemplate(tokenizers[style])!;
  }
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('a ChatML (Qwen-style) template', () => {
  it('renders a multi-turn conversation with a system turn exactly', () => {
    expect(renderChatTemplate(templates.chatml, conversation, false)).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n' +
        '<|im_start|>user\nHi<|im_end|>\n' +
        '<|im_start|>assistant\nHello!<|im_end|>\n' +
        '<|im_start|>user\nBye<|im_end|>\n' +
        '<|im_start|>assistant\nSee you.<|im_end|>\n',
    );
  });

  it('ends a prompt with the generation prompt, adding its default system turn', () => {
    expect(templateGenerationPrompt(templates.chatml, [{ role: 'user', content: 'Hi' }])).toBe(
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' +
        '<|im_start|>user\nHi<|im_end|>\n' +
        '<|im_start|>assistant\n',
    );
  });

  it('cuts a conversation into context and every assistant turn, each with its <|im_end|>\\n', () => {
    expect(templateTrainingSpans(templates.chatml, conversation)).toEqual([
      {
        text: '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
        trained: false,
      },
      { text: 'Hello!<|im_end|>\n', trained: true },
      { text: '<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n', trained: false },
      { text: 'See you.<|im_end|>\n', trained: true },
    ]);
  });

  it("keeps an assistant turn of weight 0 (OpenAI's context-only turn) as context, not trained", () => {
    const weighted = conversation.map((m, i) => (i === 2 ? { ...m, weight: 0 as const } : m));
    const spans = templateTrainingSpans(templates.chatml, weighted);
    expect(spans.filter((s) => s.trained).map((s) => s.text)).toEqual(['See you.<|im_end|>\n']);
    expect(spans.map((s) => s.text).join('')).toBe(renderChatTemplate(templates.chatml, conversation, false));
    expect(() =>
      templateTrainingSpans(templates.chatml, [{ role: 'user', content: 'x', weight: 1 }, conversation[2]]),
    ).toThrow(/messages\[0\]\.weight: only assistant turns have a weight/);
  });
});

describe('a Llama-3-style template', () => {
  it('renders bos_token, headers and <|eot_id|> exactly', () => {
    expect(renderChatTemplate(templates.llama3, conversation, false)).toBe(
      '<|begin_of_text|>' +
        '<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\nSee you.<|eot_id|>',
    );
    expect(templateGenerationPrompt(templates.llama3, [{ role: 'user', content: ' Hi ' }])).toBe(
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });

  it('trains the assistant turns through <|eot_id|>', () => {
    const spans = templateTrainingSpans(templates.llama3, conversation);
    expect(spans.filter((s) => s.trained).map((s) => s.text)).toEqual([
      'Hello!<|eot_id|>',
      'See you.<|eot_id|>',
    ]);
    expect(spans.map((s) => s.text).join('')).toBe(renderChatTemplate(templates.llama3, conversation, false));
  });

  it("reports raise_exception with the template's message and the field", () => {
    const bad = [
      { role: 'user' as const, content: 'a' },
      { role: 'system' as const, content: 'b' },
      { role: 'assistant' as const, content: 'c' },
    ];
    expect(() => renderChatTemplate(templates.llama3, bad, false, 'rows[4].messages')).toThrow(
      /^rows\[4\]\.messages: the model's chat template failed: .*System role only first/,
    );
  });
});

describe('template errors and the built-in fallback', () => {
  it('names the field of a template that does not parse', () => {
    expect(() => parseChatTemplate('{% for m in messages %}{{ m.content }}')).toThrow(ChatTemplateError);
    expect(() =>
      parseChatTemplate('{% for m in messages %}{{ m.content }}', {}, 'tokenizer_config.json'),
    ).toThrow(/^tokenizer_config\.json: the chat template does not parse/);
  });

  it('refuses a template that renders earlier turns differently from the whole conversation', () => {
    // Drops every assistant turn but the last, as reasoning templates drop earlier thoughts.
    const lastOnly = parseChatTemplate(
      "{% for m in messages %}{% if m.role != 'assistant' or loop.last %}{{ m.role + ':' + m.content + ';' }}{% endif %}{% endfor %}" +
        "{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}",
    );
    expect(() => templateTrainingSpans(lastOnly, conversation, 'rows[0].messages')).toThrow(
      /^rows\[0\]\.messages\[2\]: the chat template does not render the conversation up to this assistant turn/,
    );
  });

  it('uses the built-in format for the ByteTokenizer and for our exports of it', async () => {
    expect(modelChatTemplate(new ByteTokenizer())).toBeUndefined();
    const exported = join(dir, 'byte');
    await writeTinyChatTokenizer(exported, 'chatml');
    await writeFile(join(exported, 'tokenizer.json'), JSON.stringify(byteTokenizerJson()));
    await writeFile(join(exported, 'tokenizer_config.json'), JSON.stringify(byteTokenizerConfig(64)));
    const byte = await loadHfTokenizer(exported);
    expect(byte.hfFiles?.chatTemplate).toBe(BYTE_CHAT_TEMPLATE);
    expect(modelChatTemplate(byte)).toBeUndefined();
    // The built-in format as Jinja (what exports write) renders as chat.ts does.
    const builtin = parseChatTemplate(BYTE_CHAT_TEMPLATE);
    expect(renderChatTemplate(builtin, conversation.slice(0, 4), true)).toBe(
      chatPrompt(conversation.slice(0, 4)),
    );
  });

  it('passes the special tokens of tokenizer_config.json as variables', () => {
    expect(templates.chatml.variables).toMatchObject({ eos_token: '<|im_end|>', pad_token: '<|endoftext|>' });
    expect(templates.llama3.variables).toMatchObject({
      bos_token: '<|begin_of_text|>',
      eos_token: '<|eot_id|>',
    });
  });
});

describe('framing of HF tokenizers', () => {
  it('adds bos only when the tokenizer does: Llama-style post-processor yes, ChatML / GPT-2 style no', () => {
    expect(tokenizers.llama3.addsBos).toBe(true);
    expect(tokenizers.llama3.bosId).toBe(261);
    expect(tokenizers.llama3.eosId).toBe(264);
    expect(tokenizers.chatml.addsBos).toBe(false);
    expect(tokenizers.chatml.eosId).toBe(262);
    expect(tokenizers.chatml.encode('<|im_start|>user\nHi<|im_end|>')).toEqual([
      261, 84, 82, 68, 81, 198, 39, 72, 262,
    ]);
  });

  it('GPT-2 (a ByteLevel post-processor) adds none; add_bos_token in tokenizer_config.json decides over it', async () => {
    const gpt2 = join(dir, 'gpt2');
    await mkdir(gpt2, { recursive: true });
    await writeFile(join(gpt2, 'tokenizer.json'), JSON.stringify(tinyGpt2TokenizerJson()));
    const config = { bos_token: '<|endoftext|>', eos_token: '<|endoftext|>' };
    await writeFile(join(gpt2, 'tokenizer_config.json'), JSON.stringify(config));
    expect((await loadHfTokenizer(gpt2)).addsBos).toBe(false);
    await writeFile(join(gpt2, 'tokenizer_config.json'), JSON.stringify({ ...config, add_bos_token: true }));
    expect((await loadHfTokenizer(gpt2)).addsBos).toBe(true);
    const llama = { ...tinyChatTokenizerConfig('llama3'), add_bos_token: false };
    await writeFile(join(dir, 'llama3', 'tokenizer_config.json'), JSON.stringify(llama));
    expect((await loadHfTokenizer(join(dir, 'llama3'))).addsBos).toBe(false);
  });
});
