// The `lora` section every training stage accepts: one LoraConfig, defaults filled, bad values named by path.
import { describe, expect, test } from 'vitest';
import { checkStageConfig } from './configs.js';
import type { StageKind } from './configs.js';

const KINDS: StageKind[] = ['sft', 'reward_model', 'dpo', 'pro', 'raft', 'grpo', 'ppo'];

describe('lora on every stage config', () => {
  test.each(KINDS)('%s: absent = full fine-tuning; a partial section gets the defaults', (kind) => {
    expect(checkStageConfig(kind, {}).config).not.toHaveProperty('lora');
    const { config, errors } = checkStageConfig(kind, { lora: { r: 4, modulesToSave: ['score'] } });
    expect(errors).toEqual([]);
    expect((config as { lora?: unknown }).lora).toEqual({
      r: 4,
      alpha: 16,
      dropout: 0,
      useRslora: false,
      modulesToSave: ['score'],
    });
  });

  test.each(KINDS)(
    '%s: r ≤ 0, a module of no decoder, an unknown field → errors naming the field',
    (kind) => {
      const paths = (lora: unknown) =>
        checkStageConfig(kind, { lora }, '/stages/1/config').errors.map((e) => e.path);
      expect(paths({ r: 0 })).toEqual(['/stages/1/config/lora/r']);
      expect(paths({ r: -2 })).toEqual(['/stages/1/config/lora/r']);
      expect(paths({ targetModules: ['q_proj', 'conv1'] })).toEqual([
        '/stages/1/config/lora/targetModules/1',
      ]);
      expect(paths({ dropout: 1 })).toEqual(['/stages/1/config/lora/dropout']);
      expect(paths({ rank: 8 })).toEqual(['/stages/1/config/lora/rank']);
    },
  );
});
