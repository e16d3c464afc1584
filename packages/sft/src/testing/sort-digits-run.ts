// The setup the LoRA and prompt-tuning SFT tests share: a CPU runtime, the sort-digits SFT rows, a scratch
// directory, and a run that reports the held-out loss before (step 0) and after training.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SftConfigInput, SftMetrics, type SftRow, validateJsonl } from '@rlhf/contracts';
import { sortDigitsFiles } from '@rlhf/examples';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import type { CheckpointStore, ModelWeights } from '@rlhf/stage-kit';
import { afterAll, beforeAll } from 'vitest';
import { type SftInput, trainSft } from '../sft.js';

/** The settings both tests train with: short constant-lr runs on 32-token rows, 5 % held out. */
export const SORT_DIGITS_SFT: SftConfigInput = {
  batchSize: 32,
  schedule: 'constant',
  stepsPerCall: 20,
  validationFraction: 0.05,
  maxSeqLen: 32,
  seed: 3,
};

export interface SortDigitsSft {
  readonly runtime: Runtime;
  readonly rows: SftRow[];
  /** A scratch directory, removed after the file's tests. */
  readonly dir: string;
  /** trainSft on the rows with `common` then `config`; `before` is the step-0 held-out loss, `after` the last. */
  run(
    config: SftConfigInput,
    model: ModelWeights,
    checkpoints?: CheckpointStore,
  ): Promise<{ result: Awaited<ReturnType<typeof trainSft>>; before: number; after: number }>;
}

/** Registers the file's beforeAll / afterAll; the fields are set once beforeAll has run. */
export function sortDigitsSft(
  common: SftConfigInput,
  extra: Pick<SftInput, 'baseModel'> = {},
): SortDigitsSft {
  let runtime: Runtime | undefined;
  let rows: SftRow[] = [];
  let dir = '';
  beforeAll(async () => {
    runtime = await createRuntime({ device: 'cpu' });
    rows = (await validateJsonl('sft', readFileSync(sortDigitsFiles.sft, 'utf8'))).rows;
    dir = await mkdtemp(join(tmpdir(), 'sft-'));
  });
  afterAll(async () => {
    await runtime?.close();
    await rm(dir, { recursive: true, force: true });
  });
  const ready = (): Runtime => {
    if (!runtime) throw new Error('sortDigitsSft: used before beforeAll ran');
    return runtime;
  };
  return {
    get runtime() {
      return ready();
    },
    get rows() {
      return rows;
    },
    get dir() {
      return dir;
    },
    async run(config, model, checkpoints) {
      let before = Number.NaN;
      const result = await trainSft({
        ...extra,
        config: { ...common, ...config },
        model,
        rows,
        runtime: ready(),
        hooks: {
          checkpoints,
          onMetrics: (step, values) => {
            if (step === 0) before = values[SftMetrics.evalLoss];
          },
        },
      });
      return { result, before, after: result.summary[SftMetrics.evalLoss] };
    },
  };
}
