import { resolvePpoConfig } from '@rlhf/contracts';
import { describe, expect, test } from 'vitest';
import { AdaptiveKlController, createKlController, FixedKlController } from './kl-controller.js';

describe('AdaptiveKlController', () => {
  test('moves β by the clipped proportional error (Ziegler et al. 2019)', () => {
    const ctl = new AdaptiveKlController(0.05, 6, 10_000);
    // KL 9 vs target 6: error 9/6 - 1 = 0.5, clipped to 0.2; β·(1 + 0.2·64/10000) = 0.05·1.00128
    ctl.update(9, 64);
    expect(ctl.value).toBeCloseTo(0.050064, 12);
    // KL 3: error -0.5 clipped to -0.2; 0.050064·(1 - 0.00128) = 0.04999991808
    ctl.update(3, 64);
    expect(ctl.value).toBeCloseTo(0.04999991808, 12);
    // KL 6.6: error 0.1, inside the clip; ·(1 + 0.1·100/10000) = ·1.001
    ctl.update(6.6, 100);
    expect(ctl.value).toBeCloseTo(0.04999991808 * 1.001, 12);
  });

  test('refuses a NaN KL instead of poisoning β', () => {
    const ctl = new AdaptiveKlController(0.05, 6, 10_000);
    expect(() => ctl.update(Number.NaN, 64)).toThrow('KL is NaN');
    expect(ctl.value).toBe(0.05);
  });
});

describe('FixedKlController and createKlController', () => {
  test('a fixed β never moves', () => {
    const ctl = new FixedKlController(0.05);
    ctl.update(100, 64);
    expect(ctl.value).toBe(0.05);
    expect(ctl.state()).toEqual({ type: 'fixed', value: 0.05 });
  });

  test('builds from a PPO config and resumes from a checkpointed state', () => {
    const config = resolvePpoConfig({ kl: { type: 'adaptive', coef: 0.1, target: 2, horizon: 1000 } }).kl;
    const ctl = createKlController(config);
    ctl.update(4, 10); // error clipped 0.2: 0.1·(1 + 0.2·10/1000) = 0.1002
    const saved = JSON.parse(JSON.stringify(ctl.state()));
    expect(saved).toEqual({ type: 'adaptive', value: ctl.value, target: 2, horizon: 1000 });
    expect(ctl.value).toBeCloseTo(0.1002, 12);
    const resumed = createKlController(config, saved);
    expect(resumed.value).toBe(ctl.value);
    expect(createKlController(resolvePpoConfig().kl)).toBeInstanceOf(FixedKlController);
    expect(() => createKlController(resolvePpoConfig().kl, saved)).toThrow(
      "the checkpoint holds a 'adaptive' controller",
    );
  });
});
