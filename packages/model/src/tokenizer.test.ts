import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyGpt2TokenizerJson } from './testing/tiny-hf.js';
import { ByteTokenizer, loadHfTokenizer, type Tokenizer } from './tokenizer.js';

const samples = [
  '',
  'hello world',
  'héllo wörld ✓ 😀',
  '  spaces\tand\nnewlines  ',
  'a <|eos|> b',
  "it's 42!",
];

describe('ByteTokenizer', () => {
  const tok = new ByteTokenizer();

  it('has 259 tokens with bos/eos/pad after the bytes', () => {
    expect([tok.vocabSize, tok.bosId, tok.eosId, tok.padId]).toEqual([259, 256, 257, 258]);
  });

  it('encodes UTF-8 bytes and round trips exactly', () => {
    expect(tok.encode('é€')).toEqual([0xc3, 0xa9, 0xe2, 0x82, 0xac]);
    for (const text of samples) expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it('keeps special-looking text as plain bytes and renders or skips special ids', () => {
    expect(tok.encode('<|eos|>').every((id) => id < 256)).toBe(true);
    const ids = [tok.bosId, ...tok.encode('hi'), tok.eosId, tok.padId];
    expect(tok.decode(ids)).toBe('<|bos|>hi<|eos|><|pad|>');
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('hi');
  });

  it('decodes cut-off UTF-8 to U+FFFD and rejects ids outside the vocabulary', () => {
    expect(tok.decode([0x68, 0xe2, 0x82])).toBe('h\uFFFD');
    expect(() => tok.decode([259])).toThrow(/outside the vocabulary/);
    expect(() => tok.decode([-1])).toThrow(RangeError);
  });
});

describe('loadHfTokenizer (GPT-2 style byte-level BPE)', () => {
  let dir: string;
  let tok: Tokenizer;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hf-tok-'));
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tinyGpt2TokenizerJson()));
    tok = await loadHfTokenizer(dir); // no tokenizer_config.json: eos falls back to <|endoftext|>
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('applies the merges and gives GPT-2 byte ids', () => {
    // 'o' = 78, 'r' = 81, 'l' = 75, 'd' = 67, 'Ġ' (space) = 220 in GPT-2's byte order.
    expect(tok.encode('hello')).toEqual([258, 78]); // he+ll -> hell (258), o
    expect(tok.encode(' world')).toEqual([259, 78, 81, 75, 67]); // Ġw (259) o r l d
    expect(tok.encode('ll')).toEqual([257]);
    expect(tok.encode('hi<|endoftext|>')).toEqual([71, 72, 260]);
  });

  it('resolves special ids and the vocabulary size', () => {
    expect([tok.vocabSize, tok.bosId, tok.eosId, tok.padId]).toEqual([261, 260, 260, 260]);
  });

  it('round trips text exactly (no clean-up of spaces) and handles specials and empty input', () => {
    for (const text of [...samples, 'a . b , c ?', "don 't"]) expect(tok.decode(tok.encode(text))).toBe(text);
    expect(tok.decode([258, 78, 260])).toBe('hello<|endoftext|>');
    expect(tok.decode([258, 78, 260], { skipSpecialTokens: true })).toBe('hello');
    expect(tok.decode([])).toBe('');
    expect(() => tok.decode([261])).toThrow(RangeError);
  });

  it('reads bos/eos/pad from tokenizer_config.json, as strings or AddedToken objects', async () => {
    const json = tinyGpt2TokenizerJson();
    const added = json.added_tokens as Record<string, unknown>[];
    added.push({ ...added[0], id: 261, content: '<pad>' });
    const configDir = await mkdtemp(join(tmpdir(), 'hf-tok-'));
    await writeFile(join(configDir, 'tokenizer.json'), JSON.stringify(json));
    await writeFile(
      join(configDir, 'tokenizer_config.json'),
      JSON.stringify({ eos_token: { __type: 'AddedToken', content: '<|endoftext|>' }, pad_token: '<pad>' }),
    );
    const withPad = await loadHfTokenizer(configDir);
    expect([withPad.vocabSize, withPad.bosId, withPad.eosId, withPad.padId]).toEqual([262, 260, 260, 261]);

    await writeFile(join(configDir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '</s>' }));
    await expect(loadHfTokenizer(configDir)).rejects.toThrow(/eos_token "<\/s>" is not in the vocabulary/);
    await rm(configDir, { recursive: true, force: true });
  });
});
