// bench/suite.ts at a tiny shape: every measurement (generation, unfused and fused SFT steps, one PPO iteration) in
// its own child process, for a GPT-2 and a Qwen3-shaped (Llama-family) model, through the same code as the real sizes.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

test('bench/suite.ts at a tiny shape: tokens/s, set-up and peak RSS of every mode, one JSON line each', () => {
  const script = fileURLToPath(new URL('../bench/suite.ts', import.meta.url));
  const shape = ['--batch', '4', '--prompt', '8', '--new-tokens', '6', '--sft-batch', '2', '--seq', '12'];
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', script, '--presets', 'tiny,tiny-qwen3', ...shape, '--fused-steps', '3'],
    { encoding: 'utf8', maxBuffer: 1 << 22 },
  );
  const lines = out
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  expect(lines.map((l) => `${l.preset}/${l.mode}`)).toEqual(
    ['tiny', 'tiny-qwen3'].flatMap((p) =>
      ['generate', 'sft-unfused', 'sft-fused', 'ppo'].map((m) => `${p}/${m}`),
    ),
  );
  const vocab: Record<string, number> = { tiny: 259, 'tiny-qwen3': 512 };
  for (const l of lines) {
    const what = `${l.preset}/${l.mode}`;
    expect(l.failed, what).toBeUndefined();
    expect(l.impl, what).toBe('ours');
    // Tokens of one call: generated 4 × 6; trained 2 × 12 per step (3 fused); a PPO iteration's 4 × 6 responses.
    const tokens = { generate: 24, 'sft-unfused': 24, 'sft-fused': 72, ppo: 24 }[l.mode as string];
    expect(l.tokensPerCall, what).toBe(tokens);
    expect(l.tokensPerSecond / (l.tokensPerCall / l.secondsPerCall), what).toBeCloseTo(1, 2);
    expect(l.cpuSecondsPerCall, what).toBeGreaterThan(0);
    expect(l.setupMs, what).toBeGreaterThan(0);
    expect(l.peakRssMiB, what).toBeGreaterThan(50);
    expect(l.machine.loadavg, what).toHaveLength(3);
    // Random weights of std 0.02 predict nearly uniformly: the SFT loss is close to ln(vocab).
    if (l.mode.startsWith('sft'))
      expect(Math.abs(l.loss - Math.log(vocab[l.preset])), what).toBeLessThan(0.2);
    if (l.mode === 'ppo') {
      expect(Number.isFinite(l.loss), what).toBe(true);
      for (const phase of ['generate', 'score', 'targets', 'train'])
        expect(l.phases[phase], `${what} ${phase}`).toBeGreaterThanOrEqual(0);
    }
  }
}, 300_000);
