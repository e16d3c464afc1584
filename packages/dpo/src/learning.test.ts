// DPO learns on sort-digits, from the SFT policy: on the task's ranked lists (ideal answer first, then near misses
// and wrong ones), and on rankings of the SFT policy's own samples by the programmatic ground truth (the labeler).
// The policy's ground-truth reward of sampled answers rises; a larger β keeps it closer to the reference. PRO and
// RRHF (list-wise / pairwise, reference-free, with their SFT term) learn from the same K = 4 rankings.
import type { DpoConfigInput, RankedRow } from '@rlhf/contracts';
import { DpoMetrics } from '@rlhf/contracts';
import { generatePromptRows, generateRankedRows } from '@rlhf/examples';
import { meanGroundTruth, sampleRankings, sftPolicy } from '@rlhf/ppo/testing';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import type { ModelWeights } from '@rlhf/stage-kit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { trainDpo } from './dpo.js';
import { trainPro } from './pro.js';

let runtime: Runtime;
let sft: ModelWeights;
let sftTruth: number;
const heldOutPrompts = generatePromptRows(96, { seed: 901 });
const SEEDS = [1, 2];

beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
  sft = await sftPolicy(runtime);
  sftTruth = await meanGroundTruth(runtime, sft, heldOutPrompts, SEEDS);
}, 600_000);
afterAll(() => runtime.close());

const base: DpoConfigInput = {
  maxSteps: 120,
  batchSize: 16,
  schedule: 'constant',
  maxSeqLen: 32,
  validationFraction: 0.1,
  evalEvery: 1_000_000,
  checkpointEvery: 1_000_000,
  stepsPerCall: 10,
  seed: 3,
};

async function dpo(rows: readonly RankedRow[], config: DpoConfigInput) {
  const result = await trainDpo({ config: { ...base, ...config }, model: sft, rows, runtime });
  const truth = await meanGroundTruth(runtime, result.model, heldOutPrompts, SEEDS);
  console.log(JSON.stringify({ config, sftTruth, truth, ...result.summary }));
  return { summary: result.summary, truth };
}

describe('DPO family on sort-digits (tiny preset)', () => {
  const offline = generateRankedRows(800, { seed: 77 });

  test('DPO on ranked lists raises the ground truth, sampled and greedy; held-out implicit-reward accuracy >= 0.9', async () => {
    const result = await trainDpo({
      config: { ...base, beta: 1, lr: 2e-4 },
      model: sft,
      rows: offline,
      runtime,
    });
    const { summary } = result;
    const truth = await meanGroundTruth(runtime, result.model, heldOutPrompts, SEEDS);
    const greedy = await meanGroundTruth(runtime, result.model, heldOutPrompts, [1], undefined, 0);
    const sftGreedy = await meanGroundTruth(runtime, sft, heldOutPrompts, [1], undefined, 0);
    console.log(JSON.stringify({ sftTruth, truth, sftGreedy, greedy, ...summary }));
    expect(truth).toBeGreaterThan(sftTruth + 0.1);
    expect(greedy).toBeGreaterThan(sftGreedy);
    expect(summary[DpoMetrics.evalRewardsAccuracies]).toBeGreaterThanOrEqual(0.9);
  }, 600_000);

  test('a small β lets the policy drift much further from the reference than a large one', async () => {
    const weak = await dpo(offline, { beta: 0.01, lr: 1e-4 });
    const strong = await dpo(offline, { beta: 0.5, lr: 1e-4 });
    // eval/kl: mean over held-out best responses of log π − log π_ref.
    expect(Math.abs(weak.summary[DpoMetrics.evalKl])).toBeGreaterThan(
      3 * Math.abs(strong.summary[DpoMetrics.evalKl]),
    );
  }, 600_000);

  test('IPO raises the ground truth too', async () => {
    const { truth } = await dpo(offline, { lossType: 'ipo', beta: 0.5, lr: 1e-4 });
    // IPO's squared loss moves less than DPO's (0.664 -> 0.757 measured): it closes over a fifth of the gap
    // between the SFT policy and a perfect one.
    expect((truth - sftTruth) / (1 - sftTruth)).toBeGreaterThan(0.2);
  }, 600_000);

  test('SimPO (reference-free, with the RPO NLL term) on rankings of the policy’s own samples raises it', async () => {
    const onPolicy = await sampleRankings(runtime, sft, generatePromptRows(800, { seed: 77 }), 4, 12, 5);
    const { summary, truth } = await dpo(onPolicy, {
      lossType: 'simpo',
      beta: 2,
      simpoGamma: 0.5,
      rpoAlpha: 1,
      lr: 1e-4,
    });
    expect(truth).toBeGreaterThan(sftTruth + 0.1);
    expect(summary[DpoMetrics.evalRewardsAccuracies]).toBeGreaterThan(0.8);
  }, 600_000);

  test('PRO and RRHF on K = 4 rankings of the policy’s own samples raise it (DPO on their adjacent pairs alongside)', async () => {
    const onPolicy = await sampleRankings(runtime, sft, generatePromptRows(800, { seed: 77 }), 4, 12, 5);
    const pro = await trainPro({
      config: { ...base, objective: 'pro', lr: 1e-4 },
      model: sft,
      rows: onPolicy,
      runtime,
    });
    const rrhf = await trainPro({
      config: { ...base, objective: 'rrhf', lr: 1e-4 },
      model: sft,
      rows: onPolicy,
      runtime,
    });
    const adjacent = onPolicy.flatMap((r) =>
      r.responses.slice(1).map((rejected, i) => ({ prompt: r.prompt, chosen: r.responses[i], rejected })),
    );
    const pairs = await trainDpo({
      config: { ...base, beta: 1, lr: 2e-4 },
      model: sft,
      rows: adjacent,
      runtime,
    });
    const truth = {
      sft: sftTruth,
      pro: await meanGroundTruth(runtime, pro.model, heldOutPrompts, SEEDS),
      rrhf: await meanGroundTruth(runtime, rrhf.model, heldOutPrompts, SEEDS),
      dpoAdjacentPairs: await meanGroundTruth(runtime, pairs.model, heldOutPrompts, SEEDS),
    };
    // Reported, not asserted: whether the list-wise objectives beat DPO on adjacent pairs (issue 12).
    console.log(
      JSON.stringify({ groundTruth: truth, proAccuracy: pro.summary[DpoMetrics.evalRewardsAccuracies] }),
    );
    expect(truth.pro).toBeGreaterThan(sftTruth + 0.1);
    expect(truth.rrhf).toBeGreaterThan(sftTruth + 0.1);
    expect(pro.summary[DpoMetrics.evalRewardsAccuracies]).toBeGreaterThan(0.8);
  }, 600_000);
});
