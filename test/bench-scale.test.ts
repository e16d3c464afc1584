// bench/scale.ts at a tiny shape: the same path as the Qwen3-0.6B benchmark (random bf16 weights written sharded,
// imported through the HF loader, greedy generation, one full and one LoRA SFT step, each in a child process).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

test('bench/scale.ts --shape tiny: imports sharded bf16, generates, and steps full and LoRA SFT', () => {
  const script = fileURLToPath(new URL('../bench/scale.ts', import.meta.url));
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', script, '--shape', 'tiny', '--shard-mb', '0.05', '--new-tokens', '4', '--seq', '16'],
    { encoding: 'utf8', maxBuffer: 1 << 22 },
  );
  const report = JSON.parse(out);
  // 119,232 parameters of 2 bytes over 50 kB shards: several shards and the index.
  expect(report.weightFiles).toContain('model.safetensors.index.json');
  expect(report.weightFiles.filter((f: string) => f.startsWith('model-')).length).toBeGreaterThan(2);
  const byMode = Object.fromEntries(report.modes.map((m: { mode: string }) => [m.mode, m]));
  expect(byMode.import.params).toBe(report.model.params);
  expect(byMode.generate.generatedTokens).toBe(4);
  expect(byMode.generate.tokensPerSecond).toBeGreaterThan(0);
  // Random weights of std 0.02 predict nearly uniformly: the loss is close to ln(vocab).
  for (const mode of ['full', 'lora']) {
    expect(byMode[mode].loss, mode).toBeGreaterThan(Math.log(512) - 0.1);
    expect(byMode[mode].loss, mode).toBeLessThan(Math.log(512) + 0.1);
    expect(byMode[mode].sftStepMs, mode).toBeGreaterThan(0);
    expect(byMode[mode].peakRssMiB, mode).toBeGreaterThan(0);
  }
  expect(byMode.lora.trainableParams).toBeLessThan(byMode.full.trainableParams / 10);
}, 300_000);
