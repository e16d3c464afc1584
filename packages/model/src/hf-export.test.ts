import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GptConfig, initParams, isLlama, presetConfig } from './config.js';
import { gptConfigFromHf, loadHfModel, SCORE_BIAS_KEY } from './hf.js';
import { BYTE_CHAT_TEMPLATE, byteTokenizerJson, hfModelFiles } from './hf-export.js';
import { readSafetensors, tensorToFloat32 } from './safetensors.js';
import { referenceGptForward } from './testing/reference-gpt.js';
import { referenceLlamaForward } from './testing/reference-llama.js';
import { hfGpt2Shapes, tinyGpt2TokenizerJson } from './testing/tiny-hf.js';
import { hfLlamaShapes, llamaGqaLlama3, qwen3QkNorm, variants } from './testing/tiny-llama.js';
import { ByteTokenizer, loadHfTokenizer, type Tokenizer } from './tokenizer.js';

const bytes = new ByteTokenizer();
const decoder = new TextDecoder();
const json = (files: Record<string, Uint8Array>, name: string) =>
  JSON.parse(decoder.decode(files[name])) as Record<string, unknown>;

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'hf-export-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

async function writeDir(files: Record<string, Uint8Array>): Promise<string> {
  const dir = join(root, `model-${n++}`);
  await mkdir(dir, { recursive: true });
  for (const [name, data] of Object.entries(files)) await writeFile(join(dir, name), data);
  return dir;
}

/** A model with every parameter random (norms and biases too, so nothing is trivially 0 or 1). */
function model(config: GptConfig, seed: number) {
  const params = initParams(config, seed);
  let i = 0;
  for (const data of params.values()) for (let j = 0; j < data.length; j++) data[j] += 0.01 * ((i++ % 7) - 3);
  if (config.scalarHead) params.get('score.bias')![0] = 0.375;
  return { config, params, metadata: { run: 'r1', stage: 'rm' } };
}

function tensorList(file: Uint8Array): [string, number[]][] {
  return [...readSafetensors(file).tensors].map(([name, t]) => [name, t.shape]);
}
const sorted = (list: [string, number[]][]) => [...list].sort(([a], [b]) => a.localeCompare(b));

const gpt2 = presetConfig('tiny', { maxPositions: 16, nEmbd: 16, nHead: 2 });
const llamaConfig = (hf: Record<string, unknown>) => gptConfigFromHf(hf);

const cases: [string, GptConfig][] = [
  ['gpt2', gpt2],
  ['gpt2 scalar head', { ...gpt2, scalarHead: true }],
  ...variants.map(([name, hf]) => [name, { ...llamaConfig(hf), vocabSize: 259 }] as [string, GptConfig]),
  ['llama scalar head (untied)', { ...llamaConfig(llamaGqaLlama3), vocabSize: 259, scalarHead: true }],
  ['qwen3 scalar head (tied)', { ...llamaConfig(qwen3QkNorm), vocabSize: 259, scalarHead: true }],
];

describe('hfModelFiles', () => {
  it.each(cases)(
    '%s: tensors are exactly the HF class state dict, config.json complete',
    async (_, config) => {
      const m = model(config, 3);
      const files = hfModelFiles(m, { tokenizer: bytes });
      const hfConfig = json(files, 'config.json');
      const expected = isLlama(config) ? hfLlamaShapes(hfConfig) : hfGpt2Shapes(hfConfig);
      expect(sorted(tensorList(files['model.safetensors']))).toEqual(sorted(expected));

      const prefix = isLlama(config)
        ? { llama: 'Llama', mistral: 'Mistral', qwen2: 'Qwen2', qwen3: 'Qwen3' }[config.modelType!]
        : 'GPT2';
      const head = config.scalarHead
        ? 'ForSequenceClassification'
        : isLlama(config)
          ? 'ForCausalLM'
          : 'LMHeadModel';
      expect(hfConfig.architectures).toEqual([`${prefix}${head}`]);
      expect(hfConfig).toMatchObject({ bos_token_id: 256, eos_token_id: 257, pad_token_id: 258 });
      expect(hfConfig.torch_dtype).toBe('float32');
      if (config.scalarHead) {
        expect(hfConfig).toMatchObject({ num_labels: 1, [SCORE_BIAS_KEY]: 0.375 });
        expect(readSafetensors(files['model.safetensors']).tensors.has('score.bias')).toBe(false);
      } else expect(hfConfig.num_labels).toBeUndefined();
      expect(readSafetensors(files['model.safetensors']).metadata).toEqual({
        run: 'r1',
        stage: 'rm',
        format: 'pt',
      });

      // Round trip: the directory loads back to the same config and parameters.
      const loaded = await loadHfModel(await writeDir(files));
      expect(loaded.config).toEqual(config);
      expect([...loaded.params.keys()]).toEqual([...m.params.keys()]);
      for (const [name, data] of m.params) {
        const droppedHead = config.scalarHead && name === 'lm_head.weight';
        const want = droppedHead ? m.params.get('model.embed_tokens.weight')! : data;
        expect(loaded.params.get(name), name).toEqual(want);
      }
      expect(loaded.metadata).toEqual({ run: 'r1', stage: 'rm', format: 'pt' });
      expect(loaded.tokenizer.encode('a <|eos|> b')).toEqual(bytes.encode('a <|eos|> b'));
    },
  );

  it.each(cases.filter(([, c]) => !c.scalarHead))(
    '%s: logits computed from the exported files (HF names, config.json) equal the trained model',
    (_, config) => {
      const m = model(config, 4);
      const files = hfModelFiles(m, { tokenizer: bytes });
      const hfConfig = json(files, 'config.json');
      const weights = new Map(
        [...readSafetensors(files['model.safetensors']).tensors].map(([k, t]) => [k, tensorToFloat32(t, k)]),
      );
      const tokens = [256, ...bytes.encode('hi there')];
      if (isLlama(config)) {
        // the reference reads HF's config.json and state dict; the original params are HF-named already
        const exported = referenceLlamaForward(hfConfig, weights, [tokens]);
        const trained = referenceLlamaForward(hfConfig, m.params, [tokens]);
        expect(exported).toEqual(trained);
      } else {
        const hfParams = gptConfigFromHf(hfConfig);
        const stripped = new Map([...weights].map(([k, v]) => [k.replace(/^transformer\./, ''), v]));
        expect(referenceGptForward(hfParams, stripped, tokens).logits).toEqual(
          referenceGptForward(config, m.params, tokens).logits,
        );
      }
    },
  );

  it("a scalar head's HF score is ours minus the recorded bias", () => {
    const config = { ...gpt2, scalarHead: true };
    const m = model(config, 5);
    const files = hfModelFiles(m, { tokenizer: bytes });
    const tensors = readSafetensors(files['model.safetensors']).tensors;
    // what GPT2ForSequenceClassification computes: score.weight · h (no bias)
    const hfParams = new Map(
      [...tensors].map(([k, t]) => [k.replace(/^transformer\./, ''), tensorToFloat32(t, k)]),
    );
    hfParams.set('score.bias', new Float32Array(1));
    const tokens = [256, ...bytes.encode('good answer'), 257];
    const ours = referenceGptForward(config, m.params, tokens).values!;
    const theirs = referenceGptForward(config, hfParams, tokens).values!;
    const bias = json(files, 'config.json')[SCORE_BIAS_KEY] as number;
    for (let t = 0; t < tokens.length; t++) expect(theirs[t]).toBeCloseTo(ours[t] - bias, 12);
    expect(decoder.decode(files['README.md'])).toContain(SCORE_BIAS_KEY);
  });

  it('generation_config.json: ids always, sampling settings when given', () => {
    const gen = (generation?: Parameters<typeof hfModelFiles>[1]['generation']) =>
      json(hfModelFiles(model(gpt2, 1), { tokenizer: bytes, generation }), 'generation_config.json');
    const ids = { bos_token_id: 256, eos_token_id: 257, pad_token_id: 258 };
    expect(gen()).toEqual(ids);
    expect(gen({ maxNewTokens: 64 })).toEqual({ ...ids, max_new_tokens: 64 });
    expect(gen({ maxNewTokens: 64, temperature: 0.7, topP: 0.9 })).toEqual({
      ...ids,
      max_new_tokens: 64,
      do_sample: true,
      temperature: 0.7,
      top_k: 0,
      top_p: 0.9,
    });
    expect(gen({ temperature: 0, topK: 5 })).toEqual({ ...ids, do_sample: false });
    expect(() => gen({ topP: 0 })).toThrow(/generation.topP must be in \(0, 1\]/);
    expect(() => gen({ maxNewTokens: 1.5 })).toThrow(/maxNewTokens must be a positive integer/);
  });

  it('refuses what it cannot write', () => {
    const m = model(gpt2, 1);
    expect(() => hfModelFiles(m, { tokenizer: bytes, dtype: 'bfloat16' as 'float32' })).toThrow(
      /dtype "bfloat16"/,
    );
    const other: Tokenizer = {
      vocabSize: 10,
      bosId: 0,
      eosId: 1,
      padId: 2,
      encode: () => [],
      decode: () => '',
    };
    expect(() => hfModelFiles(m, { tokenizer: other })).toThrow(/no tokenizer files/);
    expect(() => hfModelFiles(model({ ...gpt2, vocabSize: 100 }, 1), { tokenizer: bytes })).toThrow(
      /tokenizer has 259 tokens but the model's vocab_size is 100/,
    );
  });
});

describe('hfModelFiles tokenizer files', () => {
  const samples = [
    '',
    'hello world',
    'héllo wörld ✓ 😀',
    '  spaces\tand\nnewlines  ',
    "it's 42!",
    'a <|eos|> b <|bos|><|pad|>',
    'x'.repeat(500),
  ];

  it('the ByteTokenizer as tokenizer.json: @huggingface/tokenizers encodes and decodes like ByteTokenizer', () => {
    const files = hfModelFiles(model(gpt2, 1), { tokenizer: bytes });
    const tokenizerConfig = json(files, 'tokenizer_config.json');
    expect(tokenizerConfig).toMatchObject({
      tokenizer_class: 'PreTrainedTokenizerFast',
      bos_token: '<|bos|>',
      eos_token: '<|eos|>',
      pad_token: '<|pad|>',
      split_special_tokens: true,
      chat_template: BYTE_CHAT_TEMPLATE,
      model_max_length: 16,
    });
    expect(json(files, 'special_tokens_map.json')).toEqual({
      bos_token: '<|bos|>',
      eos_token: '<|eos|>',
      pad_token: '<|pad|>',
    });
    const hf = new HfTokenizer(json(files, 'tokenizer.json'), tokenizerConfig);
    expect(hf.get_vocab(true).size).toBe(259);
    for (const [token, id] of [
      ['<|bos|>', 256],
      ['<|eos|>', 257],
      ['<|pad|>', 258],
    ] as const)
      expect(hf.token_to_id(token)).toBe(id);
    for (const text of samples) {
      if (text.includes('<|')) continue; // tokenizers.js matches specials in text (no split_special_tokens)
      const ids = hf.encode(text, { add_special_tokens: false }).ids;
      expect(ids).toEqual(bytes.encode(text));
      expect(hf.encode(text).ids).toEqual([256, ...bytes.encode(text)]); // the post-processor adds bos
      if (ids.length) expect(hf.decode(ids, { clean_up_tokenization_spaces: false })).toBe(text);
    }
    const ids = [256, 104, 105, 257, 258];
    expect(hf.decode(ids, { clean_up_tokenization_spaces: false })).toBe(bytes.decode(ids));
    expect(hf.decode(ids, { skip_special_tokens: true })).toBe(
      bytes.decode(ids, { skipSpecialTokens: true }),
    );
    expect(byteTokenizerJson()).toEqual(json(files, 'tokenizer.json'));
  });

  it('loadHfTokenizer reads the exported ByteTokenizer back exactly (split_special_tokens honoured)', async () => {
    const dir = await writeDir(hfModelFiles(model(gpt2, 1), { tokenizer: bytes }));
    const tok = await loadHfTokenizer(dir);
    expect([tok.vocabSize, tok.bosId, tok.eosId, tok.padId]).toEqual([259, 256, 257, 258]);
    for (const text of samples) {
      expect(tok.encode(text)).toEqual(bytes.encode(text));
      expect(tok.decode(tok.encode(text))).toBe(text);
    }
    const ids = [256, 104, 0xe2, 0x82, 257, 258];
    expect(tok.decode(ids)).toBe(bytes.decode(ids));
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(bytes.decode(ids, { skipSpecialTokens: true }));
    expect(tok.hfFiles?.chatTemplate).toBe(BYTE_CHAT_TEMPLATE);
    // exporting the re-loaded model writes the same tokenizer files
    const again = hfModelFiles(model(gpt2, 1), { tokenizer: tok });
    expect(json(again, 'tokenizer.json')).toEqual(byteTokenizerJson());
    expect(json(again, 'tokenizer_config.json')).toMatchObject({
      split_special_tokens: true,
      pad_token: '<|pad|>',
    });
  });

  it('an HF tokenizer: its tokenizer.json as read, tokenizer_config.json with specials and chat template', async () => {
    const src = join(root, `tok-${n++}`);
    await mkdir(src, { recursive: true });
    const tokJson = `${JSON.stringify(tinyGpt2TokenizerJson())}\n`;
    await writeFile(join(src, 'tokenizer.json'), tokJson);
    const template = "{% for m in messages %}{{ m['content'] }}{% endfor %}";
    await writeFile(
      join(src, 'tokenizer_config.json'),
      JSON.stringify({ eos_token: '<|endoftext|>', model_max_length: 1024, chat_template: template }),
    );
    const tok = await loadHfTokenizer(src);
    const config = presetConfig('tiny', { vocabSize: 261, maxPositions: 16, nEmbd: 16, nHead: 2 });
    const files = hfModelFiles(model(config, 2), { tokenizer: tok, generation: { temperature: 1 } });
    expect(decoder.decode(files['tokenizer.json'])).toBe(tokJson);
    expect(json(files, 'tokenizer_config.json')).toEqual({
      eos_token: '<|endoftext|>',
      bos_token: '<|endoftext|>',
      pad_token: '<|endoftext|>',
      model_max_length: 1024,
      clean_up_tokenization_spaces: false,
      chat_template: template,
    });
    expect(json(files, 'config.json')).toMatchObject({
      bos_token_id: 260,
      eos_token_id: 260,
      pad_token_id: 260,
    });
    expect(json(files, 'generation_config.json')).toMatchObject({
      eos_token_id: 260,
      do_sample: true,
      top_k: 0,
    });
    const chosen = hfModelFiles(model(config, 2), { tokenizer: tok, chatTemplate: BYTE_CHAT_TEMPLATE });
    expect(json(chosen, 'tokenizer_config.json').chat_template).toBe(BYTE_CHAT_TEMPLATE);

    const loaded = await loadHfModel(await writeDir(files));
    for (const text of ['hello world', 'hi<|endoftext|>'])
      expect(loaded.tokenizer.encode(text)).toEqual(tok.encode(text));
  });
});
