import { describe, expect, test } from 'vitest';
import { checkStageConfig, resolveSftConfig } from './configs.js';

const errorsOf = (input: unknown) => checkStageConfig('sft', input, '/stages/0/config').errors;

describe("SFT's promptTuning option", () => {
  test('fills numVirtualTokens (8) and stays absent when not given', () => {
    expect(resolveSftConfig({ promptTuning: {} }).promptTuning).toEqual({ numVirtualTokens: 8 });
    expect(resolveSftConfig({ promptTuning: { numVirtualTokens: 3 } }).promptTuning).toEqual({
      numVirtualTokens: 3,
    });
    expect(resolveSftConfig().promptTuning).toBeUndefined();
  });

  test('with lora it is refused, naming promptTuning; a bad count names numVirtualTokens', () => {
    expect(errorsOf({ lora: { r: 4 }, promptTuning: { numVirtualTokens: 4 } })).toEqual([
      {
        path: '/stages/0/config/promptTuning',
        message: 'cannot be combined with lora (one adapter per stage)',
      },
    ]);
    expect(errorsOf({ promptTuning: { numVirtualTokens: 0 } }).map((e) => e.path)).toEqual([
      '/stages/0/config/promptTuning/numVirtualTokens',
    ]);
    expect(errorsOf({ promptTuning: { tokens: 4 } }).map((e) => e.path)).toEqual([
      '/stages/0/config/promptTuning/tokens',
    ]);
  });
});
