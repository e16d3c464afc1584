// Our side of one suite measurement, in this process (the suite runs each in a child so maxRSS is its own):
// build (session set-up), one warm-up call, `calls` timed calls, the median. Only public package APIs.
import { resolvePpoConfig } from '@rlhf/contracts';
import { buildTrainStep, createTrainer } from '@rlhf/graph';
import { createGenerator, type GptConfig, initParams, paramShapes } from '@rlhf/model';
import {
  buildPpoTrainStep,
  createRolloutEngine,
  criticFromRewardModel,
  type PpoModels,
  paramName,
  ppoTargets,
  trainInputs,
} from '@rlhf/ppo';
import { createRuntime, int64, type Runtime, type Weights } from '@rlhf/runtime';
import { sftLossGraph } from '@rlhf/sft';
import { type Mode, median, peakRssMiB, type SuiteShapes, tokenRows } from './shapes.js';

export interface Measurement {
  impl: 'ours' | 'torch';
  mode: Mode;
  /** Tokens per timed call (generated tokens; trained tokens × steps; a PPO iteration's response tokens). */
  tokensPerCall: number;
  secondsPerCall: number;
  tokensPerSecond: number;
  /** Process CPU seconds of a call (all threads) and tokens per CPU second. */
  cpuSecondsPerCall: number;
  tokensPerCpuSecond: number;
  /** Building the model / sessions before the first call. */
  setupMs: number;
  /** The warm-up call (ORT's first run of a session includes its own allocations). */
  firstCallMs: number;
  peakRssMiB: number;
  threads: number;
  /** Mean loss of the last call (random weights: about ln vocab for SFT). */
  loss?: number;
  /** PPO: seconds of each phase of the last iteration. */
  phases?: Record<string, number>;
}

const round = (x: number, digits = 4) => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * Times `call` after a warm-up; returns the warm-up's ms and the median wall and CPU seconds of `calls` calls (CPU
 * time of the whole process, ORT's threads included: on a loaded machine it moves less than wall time).
 */
async function timed(calls: number, call: () => Promise<unknown>) {
  let started = performance.now();
  await call();
  const firstCallMs = Math.round(performance.now() - started);
  const seconds: number[] = [];
  const cpuSeconds: number[] = [];
  for (let i = 0; i < calls; i++) {
    const cpu = process.cpuUsage();
    started = performance.now();
    await call();
    seconds.push((performance.now() - started) / 1000);
    const used = process.cpuUsage(cpu);
    cpuSeconds.push((used.user + used.system) / 1e6);
  }
  return { firstCallMs, secondsPerCall: median(seconds), cpuSecondsPerCall: median(cpuSeconds) };
}

async function generate(runtime: Runtime, config: GptConfig, s: SuiteShapes) {
  const params = initParams(config, s.seed);
  const started = performance.now();
  const generator = await createGenerator(runtime, config);
  const setupMs = Math.round(performance.now() - started);
  const prompts = tokenRows(s.batch, s.promptLen, config.vocabSize, s.seed);
  let seed = 0;
  // Temperature 1 over the whole vocabulary, no EOS: every row runs every step, so the count is exact.
  const call = () =>
    generator.generate({
      params,
      prompts,
      maxNewTokens: s.newTokens,
      temperature: 1,
      seed: seed++,
      eosId: -1,
      padId: 0,
    });
  const time = await timed(s.calls, call);
  await generator.release();
  return { ...time, setupMs, tokensPerCall: s.batch * s.newTokens };
}

async function sft(runtime: Runtime, config: GptConfig, s: SuiteShapes, steps: number) {
  const params = initParams(config, s.seed);
  const { sftBatch: B, seq: T } = s;
  const started = performance.now();
  const trainStep = buildTrainStep({
    name: `suite_sft_${steps}`,
    params: paramShapes(config),
    ...sftLossGraph(config, B),
    steps,
  });
  const trainer = await createTrainer(runtime, trainStep, { params });
  const setupMs = Math.round(performance.now() - started);
  // Inputs and next-token targets from one row of T + 1 tokens; every position learned (token-mean CE).
  const rows = tokenRows(steps * B, T + 1, config.vocabSize, s.seed);
  const feeds = {
    input_ids: int64(
      [steps, 1, B, T],
      rows.flatMap((r) => r.slice(0, T)),
    ),
    targets: int64(
      [steps, 1, B, T],
      rows.flatMap((r) => r.slice(1)),
    ),
    loss_mask: {
      type: 'float32' as const,
      dims: [steps, 1, B, T],
      data: new Float32Array(steps * B * T).fill(1),
    },
  };
  let loss = 0;
  const time = await timed(s.calls, async () => {
    const report = await trainer.run(feeds, 1e-4);
    loss = report.loss.reduce((a, x) => a + x, 0) / report.loss.length;
  });
  await trainer.release();
  return { ...time, setupMs, tokensPerCall: steps * B * T, loss: round(loss) };
}

/** One model's weights under the PPO train step's role-prefixed names (same arrays). */
const withRole = (weights: Weights, role: 'policy' | 'critic'): Weights =>
  new Map([...weights].map(([name, data]) => [paramName(role, name), data]));
const ofRole = (weights: Weights, config: GptConfig, role: 'policy' | 'critic'): Weights =>
  new Map(paramShapes(config).map(({ name }) => [name, weights.get(paramName(role, name))!]));

/** One PPO iteration: rollout (generate + score by 4 models), targets on the host, the fused update. */
async function ppo(runtime: Runtime, config: GptConfig, s: SuiteShapes) {
  const ppoConfig = resolvePpoConfig({
    rolloutBatchSize: s.batch,
    maxNewTokens: s.newTokens,
    ppoEpochs: s.ppoEpochs,
    minibatches: s.minibatches,
  });
  const rmConfig: GptConfig = { ...config, scalarHead: true };
  const models: PpoModels = { policy: config, critic: rmConfig, rewardModel: rmConfig };
  const policy = initParams(config, s.seed);
  const rm = initParams(rmConfig, s.seed + 1);
  const critic = criticFromRewardModel({ config: rmConfig, params: rm }).params;
  const B = s.batch;
  const K = s.ppoEpochs * s.minibatches;
  const miniBatchSize = B / s.minibatches;
  const started = performance.now();
  const trainer = await createTrainer(
    runtime,
    buildPpoTrainStep({ models, config: ppoConfig, miniBatchSize }),
    {
      params: new Map([...withRole(policy, 'policy'), ...withRole(critic, 'critic')]),
    },
  );
  const engine = await createRolloutEngine(runtime, models, {
    maxNewTokens: s.newTokens,
    temperature: ppoConfig.temperature,
    topK: 0,
    topP: 1,
    eosId: -1,
    padId: 0,
  });
  const setupMs = Math.round(performance.now() - started);
  const prompts = tokenRows(B, s.promptLen, config.vocabSize, s.seed);
  // Each epoch visits every row once, in order (the order does not change the work).
  const rows = int64(
    [K, 1, miniBatchSize],
    Array.from({ length: K * miniBatchSize }, (_, i) => i % B),
  );
  let it = 0;
  let phases: Record<string, number> = {};
  let loss = 0;
  const iteration = async () => {
    const rollout = await engine.rollout(
      {
        policy: ofRole(trainer.state.params, config, 'policy'),
        ref: policy,
        critic: ofRole(trainer.state.params, rmConfig, 'critic'),
        rm,
      },
      prompts,
      it++,
    );
    const targetsStarted = performance.now();
    const targets = ppoTargets(rollout, rollout.scores, ppoConfig.kl.coef, ppoConfig);
    const trainStarted = performance.now();
    const report = await trainer.run({ rows }, ppoConfig.lr, trainInputs(rollout, targets, 0));
    loss = report.loss.reduce((a, x) => a + x, 0) / K;
    phases = {
      generate: round(rollout.timing.generate),
      score: round(rollout.timing.score),
      targets: round((trainStarted - targetsStarted) / 1000),
      train: round((performance.now() - trainStarted) / 1000),
    };
  };
  const time = await timed(s.calls, iteration);
  await engine.release();
  await trainer.release();
  return { ...time, setupMs, tokensPerCall: B * s.newTokens, loss: round(loss), phases };
}

export async function measure(mode: Mode, config: GptConfig, s: SuiteShapes): Promise<Measurement> {
  const runtime = await createRuntime({ device: 'cpu', intraOpNumThreads: s.threads });
  const result =
    mode === 'generate'
      ? await generate(runtime, config, s)
      : mode === 'ppo'
        ? await ppo(runtime, config, s)
        : await sft(runtime, config, s, mode === 'sft-fused' ? s.fusedSteps : 1);
  await runtime.close();
  return {
    impl: 'ours',
    mode,
    ...result,
    secondsPerCall: round(result.secondsPerCall, 6),
    tokensPerSecond: round(result.tokensPerCall / result.secondsPerCall, 1),
    cpuSecondsPerCall: round(result.cpuSecondsPerCall, 6),
    tokensPerCpuSecond: round(result.tokensPerCall / result.cpuSecondsPerCall, 1),
    peakRssMiB: peakRssMiB(),
    threads: s.threads,
  };
}
