// bench/lora.ts at a tiny Llama-family shape: the same path as the gpt2 / Qwen3-0.6B benchmark (each mode in a
// child process, the reference resident through training), and the RSS cap that kills and reports a child.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const script = fileURLToPath(new URL('../bench/lora.ts', import.meta.url));
const bench = (...args: string[]) =>
  JSON.parse(
    execFileSync(
      process.execPath,
      ['--import', 'tsx', script, '--shape', 'tiny', '--batch', '2', '--seq', '16', '--steps', '2', ...args],
      { encoding: 'utf8', maxBuffer: 1 << 22 },
    ),
  );

test('bench/lora.ts --shape tiny: LoRA and full, alone and with a resident reference; one side equals both', () => {
  const report = bench('--calls', '1');
  const byMode = Object.fromEntries(report.modes.map((m: { mode: string }) => [m.mode, m]));
  for (const mode of ['lora', 'full', 'lora+reference', 'full+reference']) {
    expect(byMode[mode].failed, mode).toBeUndefined();
    expect(byMode[mode].stepMs, mode).toBeGreaterThan(0);
    expect(byMode[mode].peakRssMiB, mode).toBeGreaterThan(0);
  }
  for (const mode of ['lora+reference', 'full+reference'])
    expect(byMode[mode].referenceScoreMs, mode).toBeGreaterThan(0);
  expect(byMode.lora.trainableParams).toBeLessThan(byMode.full.trainableParams / 10);
  // The reference-only and policy-only scorers compute what the two-sided graph does.
  expect(byMode['lora+reference'].sides.referenceMaxDiff).toBeLessThanOrEqual(1e-6);
  expect(byMode['lora+reference'].sides.policyMaxDiff).toBeLessThanOrEqual(1e-6);
  expect(report.loraVsFull.peakRssWithReference).toBeGreaterThan(0);
}, 300_000);

test('bench/lora.ts: a child past --max-rss-mb is killed and reported, not left to the OOM killer', () => {
  const report = bench('--calls', '1', '--modes', 'full', '--max-rss-mb', '40');
  expect(report.modes).toEqual([
    expect.objectContaining({ mode: 'full', failed: true, reason: 'RSS passed --max-rss-mb 40' }),
  ]);
  expect(report.modes[0].sampledPeakRssMiB).toBeGreaterThan(40);
  expect(report.loraVsFull.stepTime).toBeNull();
}, 300_000);
