// Test fixtures for the sort-digits task: an SFT policy (@rlhf/sft) and a reward model (@rlhf/reward-model), trained
// once and cached under os.tmpdir() by a hash of their settings, so repeated test runs load them in milliseconds.
//
// The reward model learns from rankings of the SFT policy's own samples, as InstructGPT's labelers ranked SFT
// outputs (§3.4); groundTruthScore plays the labeler. Off-policy pairs alone leave a tiny RM guessing on the
// policy's samples (~52 % pair agreement with the ground truth measured), which PPO then exploits.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PromptRow, RankedRow } from '@rlhf/contracts';
import { generatePromptRows, generateSftRows, groundTruthScore } from '@rlhf/examples';
import {
  ByteTokenizer,
  createGenerator,
  type GptConfig,
  hashString,
  initParams,
  presetConfig,
} from '@rlhf/model';
import { trainRewardModel } from '@rlhf/reward-model';
import type { Runtime } from '@rlhf/runtime';
import { trainSft } from '@rlhf/sft';
import {
  directoryCheckpointStore,
  type ModelWeights,
  modelFiles,
  modelFromFiles,
  promptText,
} from '@rlhf/stage-kit';

const tokenizer = new ByteTokenizer();

export interface FixtureSettings {
  config: GptConfig;
  sftSteps: number;
  sftLr: number;
  rmSteps: number;
  rmLr: number;
  /** Prompts whose SFT samples are ranked for the reward model. */
  rmPrompts: number;
  /** Samples per prompt (distinct ground-truth scores make a ranking). */
  rmSamples: number;
  /** Response budget of the samples (sort-digits answers are ≤ 10 bytes + EOS). */
  maxNewTokens: number;
  seed: number;
}

export const defaultFixtureSettings: FixtureSettings = {
  config: presetConfig('tiny'),
  sftSteps: 600,
  sftLr: 3e-3,
  rmSteps: 300,
  rmLr: 1e-3,
  rmPrompts: 1500,
  rmSamples: 4,
  maxNewTokens: 12,
  seed: 7,
};

/** The prompts PPO tests train on (a different stream from the fixtures' prompts). */
export function ppoPrompts(count: number, seed = 11): PromptRow[] {
  return generatePromptRows(count, { seed });
}

/** Bump when the fixtures' recipe changes, so stale cached models are not reused. */
const FIXTURE_VERSION = 1;

/** The sources that train the fixtures: a change to any of them retrains instead of reusing a stale cache. */
const TRAINING_SOURCES = ['graph', 'model', 'stage-kit', 'sft', 'reward-model'].map((name) =>
  fileURLToPath(new URL(`../../../${name}/src`, import.meta.url)),
);

function sourcesHash(): string {
  const hash = createHash('sha256');
  for (const dir of TRAINING_SOURCES)
    for (const file of readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort())
      if (file.endsWith('.ts') && !file.endsWith('.test.ts'))
        hash.update(file).update(readFileSync(join(dir, file)));
  return hash.digest('hex').slice(0, 16);
}

/** Loads the cached model for `key`, or trains and caches it. */
async function cached(key: string, train: () => Promise<ModelWeights>): Promise<ModelWeights> {
  const dir = join(
    tmpdir(),
    `rlhf-ppo-fixture-v${FIXTURE_VERSION}-${sourcesHash()}-${hashString(key).toString(16)}`,
  );
  const store = directoryCheckpointStore(dir, { keep: 1 });
  const hit = await store.latest();
  if (hit) return modelFromFiles(hit.files);
  const model = await train();
  await store.save(0, await modelFiles(model));
  return model;
}

const trainingConfig = (steps: number, lr: number, seed: number) => ({
  maxSteps: steps,
  batchSize: 32,
  lr,
  schedule: 'constant' as const,
  maxSeqLen: 32,
  validationFraction: 0,
  evalEvery: 1_000_000,
  checkpointEvery: 1_000_000,
  stepsPerCall: 20,
  seed,
});

/** The SFT policy: sort-digits demonstrations (70 % ideal, 30 % near misses) on a freshly initialised tiny GPT. */
export function sftPolicy(runtime: Runtime, settings = defaultFixtureSettings): Promise<ModelWeights> {
  return cached(
    `sft:${JSON.stringify({ ...settings, rmSteps: 0, rmLr: 0, rmPrompts: 0, rmSamples: 0 })}`,
    async () => {
      const result = await trainSft({
        config: trainingConfig(settings.sftSteps, settings.sftLr, settings.seed),
        model: { config: settings.config, params: initParams(settings.config, settings.seed) },
        rows: generateSftRows(4000, { seed: settings.seed }),
        runtime,
      });
      return result.model;
    },
  );
}

/** Rankings of the SFT policy's samples by the ground truth, best → worst (distinct scores only). */
export async function sampleRankings(
  runtime: Runtime,
  policy: ModelWeights,
  prompts: readonly PromptRow[],
  samples: number,
  maxNewTokens: number,
  seed: number,
): Promise<RankedRow[]> {
  const generator = await createGenerator(runtime, policy.config);
  try {
    const repeated = prompts.flatMap((p) => Array.from({ length: samples }, () => promptText(p)));
    const out = await generator.generate({
      params: policy.params,
      prompts: repeated.map((p) => [tokenizer.bosId, ...tokenizer.encode(p)]),
      maxNewTokens,
      seed,
      eosId: tokenizer.eosId,
      padId: tokenizer.padId,
    });
    const texts = out.tokens.map((row, b) =>
      tokenizer.decode(
        row.filter((_, t) => out.mask[b][t]),
        { skipSpecialTokens: true },
      ),
    );
    return prompts.flatMap((row, i) => {
      const prompt = promptText(row);
      const byScore = new Map<number, string>();
      for (const text of texts.slice(i * samples, (i + 1) * samples))
        if (text.length > 0) byScore.set(groundTruthScore(prompt, text), text);
      const responses = [...byScore.entries()].sort((a, b) => b[0] - a[0]).map(([, text]) => text);
      return responses.length >= 2 ? [{ prompt, responses }] : [];
    });
  } finally {
    await generator.release();
  }
}

/** The reward model: the SFT trunk + a fresh scalar head, Bradley–Terry on rankings of SFT samples. */
export function rewardModel(runtime: Runtime, settings = defaultFixtureSettings): Promise<ModelWeights> {
  return cached(`rm:${JSON.stringify(settings)}`, async () => {
    const policy = await sftPolicy(runtime, settings);
    const prompts = generatePromptRows(settings.rmPrompts, { seed: settings.seed + 1 });
    const rows = await sampleRankings(
      runtime,
      policy,
      prompts,
      settings.rmSamples,
      settings.maxNewTokens,
      settings.seed,
    );
    const result = await trainRewardModel({
      config: { ...trainingConfig(settings.rmSteps, settings.rmLr, settings.seed), validationFraction: 0.1 },
      model: policy,
      rows,
      runtime,
    });
    return result.model;
  });
}

/** Mean ground-truth score of the policy's samples (temperature 1, as PPO samples; 0 = greedy) over prompts × seeds. */
export async function meanGroundTruth(
  runtime: Runtime,
  policy: ModelWeights,
  prompts: readonly PromptRow[],
  seeds: readonly number[],
  maxNewTokens = defaultFixtureSettings.maxNewTokens,
  /** 1 samples as PPO does; 0 is greedy. */
  temperature = 1,
): Promise<number> {
  const generator = await createGenerator(runtime, policy.config);
  try {
    let total = 0;
    for (const seed of seeds) {
      const out = await generator.generate({
        params: policy.params,
        prompts: prompts.map((p) => [tokenizer.bosId, ...tokenizer.encode(promptText(p))]),
        maxNewTokens,
        temperature,
        seed,
        eosId: tokenizer.eosId,
        padId: tokenizer.padId,
      });
      out.tokens.forEach((row, b) => {
        const text = tokenizer.decode(
          row.filter((_, t) => out.mask[b][t]),
          { skipSpecialTokens: true },
        );
        total += groundTruthScore(promptText(prompts[b]), text);
      });
    }
    return total / (prompts.length * seeds.length);
  } finally {
    await generator.release();
  }
}
