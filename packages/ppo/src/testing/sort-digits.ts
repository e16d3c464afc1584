// Test fixtures: a tiny SFT policy and reward model for the sort-digits task, trained once and cached under
// os.tmpdir() by a hash of their settings (repeated test runs load them in milliseconds).
// TEST-ONLY SHORTCUT: until @rlhf/sft trainSft and @rlhf/reward-model trainRewardModel land, these are minimal
// loops on stage-kit's runSupervisedLoop (completion-only cross-entropy; Bradley–Terry −log σ(r_c − r_r)).
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatePreferenceRows, generateSftRows } from '@rlhf/examples';
import { cast, greater, logSigmoid, maskedMean, neg, reduceMean, slice, sub, type Tensor } from '@rlhf/graph';
import {
  ByteTokenizer,
  type GptConfig,
  gptForward,
  hashString,
  initParams,
  presetConfig,
  responseLogprobs,
  sequenceScores,
} from '@rlhf/model';
import { float32, int64, type Runtime } from '@rlhf/runtime';
import {
  directoryCheckpointStore,
  type ModelWeights,
  modelFiles,
  modelFromFiles,
  padRight,
  runSupervisedLoop,
  type SupervisedConfig,
  tokenizeExample,
} from '@rlhf/stage-kit';

const tokenizer = new ByteTokenizer();
/** Longest sort-digits example: bos + 'sort d d d d d:' + ' d d d d d' + eos = 27 tokens. */
const SEQ = 28;

export interface FixtureSettings {
  config: GptConfig;
  sftSteps: number;
  rmSteps: number;
  /** Share of noisy answers in the SFT data (sort-digits default 0.3). */
  sftNoise: number;
  seed: number;
}

export const defaultFixtureSettings: FixtureSettings = {
  config: presetConfig('tiny'),
  sftSteps: 120,
  rmSteps: 120,
  sftNoise: 0.3,
  seed: 7,
};

const supervised = (steps: number, lr: number, seed: number): SupervisedConfig => ({
  epochs: 1,
  maxSteps: steps,
  batchSize: 32,
  lr,
  warmupSteps: 0,
  schedule: 'constant',
  weightDecay: 0,
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  adamEpsilon: 1e-8,
  maxGradNorm: 1,
  evalEvery: 1_000_000,
  checkpointEvery: 1_000_000,
  seed,
  stepsPerCall: 20,
});

/** Loads the cached model for `key`, or trains it and caches it. */
async function cached(key: string, train: () => Promise<ModelWeights>): Promise<ModelWeights> {
  const store = directoryCheckpointStore(join(tmpdir(), `rlhf-ppo-fixture-${hashString(key).toString(16)}`), {
    keep: 1,
  });
  const hit = await store.latest();
  if (hit) return modelFromFiles(hit.files);
  const model = await train();
  await store.save(0, await modelFiles(model));
  return model;
}

/** The SFT policy: completion-only cross-entropy on sort-digits answers (some of them noisy). */
export function sftPolicy(runtime: Runtime, settings = defaultFixtureSettings): Promise<ModelWeights> {
  return cached(`sft:${JSON.stringify(settings)}`, async () => {
    const rows = generateSftRows(4000, { seed: settings.seed, noise: settings.sftNoise });
    const examples = rows.map((r) => tokenizeExample(tokenizer, r.prompt, r.response, SEQ));
    const { config } = settings;
    const result = await runSupervisedLoop({
      stage: 'test-sft',
      config: supervised(settings.sftSteps, 3e-3, settings.seed),
      model: { config, params: initParams(config, settings.seed) },
      runtime,
      trainSize: examples.length,
      graph: {
        batch: [
          { name: 'ids', dtype: 'int64', shape: [32, SEQ] },
          { name: 'loss_mask', dtype: 'float32', shape: [32, SEQ - 1] },
        ],
        loss: (params, batch) => {
          const logits = gptForward(new Map(Object.entries(params)), config, batch.ids).logits;
          const logprobs = responseLogprobs(logits, targetsOf(batch.ids));
          return { loss: neg(maskedMean(logprobs, batch.loss_mask)) };
        },
      },
      feeds: (batches) => {
        const picked = batches.flat().map((i) => examples[i]);
        const mask = picked.flatMap((e) =>
          Array.from({ length: SEQ - 1 }, (_, t) => (t + 1 >= e.promptTokens && t + 1 < e.ids.length ? 1 : 0)),
        );
        const K = batches.length;
        return {
          feeds: {
            ids: int64([K, 1, 32, SEQ], padRight(picked.map((e) => e.ids), SEQ, tokenizer.padId)),
            loss_mask: float32([K, 1, 32, SEQ - 1], mask),
          },
          tokens: picked.reduce((n, e) => n + e.ids.length, 0),
        };
      },
      evaluate: async () => ({}),
    });
    return result.model;
  });
}

/** Tokens 1..T−1 of ids [B, T]: what columns 0..T−2 predict. */
const targetsOf = (ids: Tensor): Tensor => slice(ids, [1], [SEQ], [1]);

/** The reward model: the SFT trunk + a fresh scalar head, Bradley–Terry on sort-digits preference pairs. */
export function rewardModel(runtime: Runtime, settings = defaultFixtureSettings): Promise<ModelWeights> {
  return cached(`rm:${JSON.stringify(settings)}`, async () => {
    const sft = await sftPolicy(runtime, settings);
    const config: GptConfig = { ...settings.config, scalarHead: true };
    const params = initParams(config, settings.seed);
    for (const [name, data] of sft.params) params.set(name, data);
    const pairs = generatePreferenceRows(4000, { seed: settings.seed + 1 }).map((r) => ({
      chosen: tokenizeExample(tokenizer, r.prompt, r.chosen, SEQ).ids,
      rejected: tokenizeExample(tokenizer, r.prompt, r.rejected, SEQ).ids,
    }));
    const result = await runSupervisedLoop({
      stage: 'test-rm',
      config: supervised(settings.rmSteps, 1e-3, settings.seed),
      model: { config, params },
      runtime,
      trainSize: pairs.length,
      graph: {
        batch: ['chosen', 'rejected'].flatMap((name) => [
          { name, dtype: 'int64' as const, shape: [32, SEQ] },
          { name: `${name}_mask`, dtype: 'int64' as const, shape: [32, SEQ] },
        ]),
        loss: (p, batch) => {
          const score = (name: string) =>
            sequenceScores(gptForward(new Map(Object.entries(p)), config, batch[name]).values!, batch[`${name}_mask`]);
          const margin = sub(score('chosen'), score('rejected'));
          return {
            loss: neg(reduceMean(logSigmoid(margin))),
            metrics: { accuracy: reduceMean(cast(greater(margin, 0), 'float32')) },
          };
        },
      },
      feeds: (batches) => {
        const picked = batches.flat().map((i) => pairs[i]);
        const dims = [batches.length, 1, 32, SEQ];
        const side = (which: 'chosen' | 'rejected') => ({
          [which]: int64(dims, padRight(picked.map((p) => p[which]), SEQ, tokenizer.padId)),
          [`${which}_mask`]: int64(dims, padRight(picked.map((p) => p[which].map(() => 1)), SEQ, 0)),
        });
        return { feeds: { ...side('chosen'), ...side('rejected') }, tokens: picked.length * 2 * SEQ };
      },
      evaluate: async () => ({}),
    });
    return result.model;
  });
}
