// Framing of rows per tokenizer and chat template, against token ids worked out by hand from the tiny tokenizers'
// vocabulary (GPT-2 byte order: printable byte b has id b − 33, '\n' = 198; the specials follow 260).
import { ByteTokenizer, type Tokenizer } from '@rlhf/model';
import { tinyChatTokenizer } from '@rlhf/model/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { promptTokens, tokenizeConversation, tokenizeExample } from './data.js';
import { conversationTokens, framingOf } from './framing.js';
import { tokenizeRanking } from './ranked.js';

const IM_START = 261;
const IM_END = 262;
const NL = 198;
const word = (text: string) => [...text].map((c) => c.charCodeAt(0) - 33);

let chatml: Tokenizer;
let llama3: Tokenizer;
beforeAll(async () => {
  chatml = await tinyChatTokenizer('chatml');
  llama3 = await tinyChatTokenizer('llama3');
});

const conversation = [
  { role: 'system' as const, content: 'S' },
  { role: 'user' as const, content: 'Hi' },
  { role: 'assistant' as const, content: 'Yo' },
  { role: 'user' as const, content: 'Ok' },
  { role: 'assistant' as const, content: 'No' },
];

describe('conversations in the model chat template', () => {
  it('learns every assistant turn and its <|im_end|>\\n, nothing else (hand-computed ids and mask)', () => {
    const context1 = [
      ...[IM_START, ...word('system'), NL, ...word('S'), IM_END, NL],
      ...[IM_START, ...word('user'), NL, ...word('Hi'), IM_END, NL],
      ...[IM_START, ...word('assistant'), NL],
    ];
    const answer1 = [56, 78, IM_END, NL]; // Y o
    const context2 = [
      ...[IM_START, 84, 82, 68, 81, NL, 46, 74, IM_END, NL], // user \n O k
      ...[IM_START, 64, 82, 82, 72, 82, 83, 64, 77, 83, NL], // assistant \n
    ];
    const answer2 = [45, 78, IM_END, NL]; // N o
    const { ids, mask } = conversationTokens(framingOf(chatml), conversation, true);
    expect(ids).toEqual([...context1, ...answer1, ...context2, ...answer2]);
    expect(mask).toEqual([
      ...context1.map(() => 0),
      ...answer1.map(() => 1),
      ...context2.map(() => 0),
      ...answer2.map(() => 1),
    ]);
    // ChatML has no bos and ends turns itself: nothing added around the template's text.
    expect(ids[0]).toBe(IM_START);
    expect(conversationTokens(framingOf(chatml), conversation, false).mask.every((m) => m === 1)).toBe(true);
  });

  it('cuts long conversations at maxLen, mask and promptTokens with them', () => {
    const full = tokenizeConversation(framingOf(chatml), conversation, 1000, true);
    expect(full.promptTokens).toBe(32);
    expect(full.truncated).toBe(false);
    const cut = tokenizeConversation(framingOf(chatml), conversation, 34, true);
    expect(cut).toEqual({
      ids: full.ids.slice(0, 34),
      lossMask: full.lossMask?.slice(0, 34),
      promptTokens: 32,
      truncated: true,
    });
  });

  it('does not add a second bos to a template that writes its own (Llama 3), unless the run asks', () => {
    const { ids } = conversationTokens(framingOf(llama3), conversation, true);
    expect(ids.filter((id) => id === llama3.bosId)).toEqual([261]);
    expect(ids[0]).toBe(261);
    const forced = conversationTokens(framingOf(llama3, { addBos: true, addEos: true }), conversation, true);
    expect(forced.ids.slice(0, 2)).toEqual([261, 261]);
    expect(forced.ids.at(-1)).toBe(llama3.eosId);
    expect(forced.mask.at(-1)).toBe(1);
  });

  it("uses the built-in format when asked, or when the model has none; 'model' without one is an error", () => {
    const builtin = conversationTokens(framingOf(chatml, { chatTemplate: 'builtin' }), conversation, true);
    // '<|system|>\nS\n...<|assistant|>\n' + 'No' with no bos (ChatML adds none) and eos <|im_end|>.
    expect(builtin.ids.slice(0, 2)).toEqual(word('<|'));
    expect(builtin.ids.slice(-3)).toEqual([45, 78, IM_END]);
    expect(builtin.mask.slice(-4)).toEqual([0, 1, 1, 1]);
    expect(() =>
      framingOf(new ByteTokenizer(), { chatTemplate: 'model' }, 'stages[0].config.framing'),
    ).toThrow(
      "stages[0].config.framing.chatTemplate: 'model', but the model's tokenizer has no chat template of its own",
    );
  });
});

describe('text rows and prompts', () => {
  it('bos only when the tokenizer adds one: ChatML / GPT-2 style none, Llama style one, ByteTokenizer one', () => {
    expect(tokenizeExample(chatml, 'Hi', 'Yo', 100, framingOf(chatml)).ids).toEqual([39, 72, 56, 78, IM_END]);
    expect(tokenizeExample(chatml, 'Hi', 'Yo', 100).ids).toEqual([39, 72, 56, 78, IM_END]);
    expect(tokenizeExample(llama3, 'Hi', 'Yo', 100).ids).toEqual([261, 39, 72, 56, 78, 264]);
    expect(tokenizeExample(new ByteTokenizer(), 'a', 'b', 100).ids).toEqual([256, 97, 98, 257]);
    const bare = framingOf(llama3, { addBos: false, addEos: false });
    expect(tokenizeExample(llama3, 'Hi', 'Yo', 100, bare)).toEqual({
      ids: [39, 72, 56, 78],
      promptTokens: 2,
      truncated: false,
    });
    const ranked = tokenizeRanking(
      chatml,
      { prompt: 'Hi', chosen: 'Yo', rejected: 'No' },
      100,
      framingOf(chatml),
    );
    expect(ranked?.example).toEqual({
      prompt: [39, 72],
      responses: [
        [56, 78, IM_END],
        [45, 78, IM_END],
      ],
    });
  });

  it('renders `messages` prompts with the generation prompt; text prompts get the text framing', () => {
    const row = { messages: [{ role: 'user' as const, content: 'Hi' }] };
    const system = [IM_START, ...word('system'), NL, ...word('You'), ...[220, ...word('are')]];
    const ids = promptTokens(chatml, row, 1000, framingOf(chatml));
    expect(ids.slice(0, system.length)).toEqual(system);
    expect(ids.slice(-13)).toEqual([IM_END, NL, IM_START, ...word('assistant'), NL]);
    expect(promptTokens(llama3, { prompt: 'Hi' }, 1000, framingOf(llama3))).toEqual([261, 39, 72]);
    expect(promptTokens(llama3, row, 1000, framingOf(llama3)).slice(0, 2)).toEqual([261, 262]);
    // Long prompts keep their end, within maxLen including bos.
    expect(promptTokens(llama3, { prompt: 'abcdef' }, 3, framingOf(llama3))).toEqual([261, ...word('ef')]);
  });

  it('renders a ranking whose prompt is a conversation: template turn ends on every response, or the built-in format', () => {
    const prompt = [
      { role: 'system' as const, content: 'S' },
      { role: 'user' as const, content: 'Hi' },
    ];
    const row = { prompt, chosen: 'Yo', rejected: 'No' };
    const chat = tokenizeRanking(chatml, row, 100, framingOf(chatml), 'rows[7].prompt')?.example;
    expect(chat?.prompt).toEqual([
      ...[IM_START, ...word('system'), NL, ...word('S'), IM_END, NL],
      ...[IM_START, ...word('user'), NL, ...word('Hi'), IM_END, NL],
      ...[IM_START, ...word('assistant'), NL],
    ]);
    expect(chat?.responses).toEqual([
      [56, 78, IM_END, NL],
      [45, 78, IM_END, NL],
    ]);
    const byte = new ByteTokenizer();
    const builtin = tokenizeRanking(byte, { prompt, responses: ['a', 'b'] }, 100)?.example;
    expect(builtin?.prompt).toEqual([
      256,
      ...new TextEncoder().encode('<|system|>\nS\n<|user|>\nHi\n<|assistant|>\n'),
    ]);
    expect(builtin?.responses).toEqual([
      [97, 257],
      [98, 257],
    ]);
    const answered = [...prompt, { role: 'assistant' as const, content: 'x' }];
    expect(() =>
      tokenizeRanking(
        chatml,
        { prompt: answered, chosen: 'a', rejected: 'b' },
        100,
        framingOf(chatml),
        'rows[7].prompt',
      ),
    ).toThrow(/^rows\[7\]\.prompt\[2\]\.role: a prompt must not end with an assistant turn/);
  });
});
