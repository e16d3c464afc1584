// Chat completions under load: an in-process API on real Redis and Postgres and one inference consumer (the worker
// pool's, in-process, CPU unless --device), driven over real HTTP by the official `openai` client: N concurrent
// streamed chat requests, after a warm-up request (model load). Prints JSON: completion tokens/s over the burst,
// time to first token and full latency (p50/p99), and how the consumer batched them.
// Run: npx tsx bench/chat.ts [-- --requests 50 --max-tokens 64 --preset tiny-llama --context 256 --device cpu
//      --max-batch 64] (--max-batch 1: no batching, for comparison)
// Needs DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test) and REDIS_URL (default redis://127.0.0.1:6379).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, createApiKey, createTeam } from '@rlhf/api';
import { writeTar } from '@rlhf/artifacts';
import { createLogger } from '@rlhf/config';
import { createTestDatabase } from '@rlhf/db';
import { ByteTokenizer, hfModelFiles, initParams, type PresetName, presetConfig } from '@rlhf/model';
import { startInferenceWorker } from '@rlhf/worker';
import { Redis } from 'ioredis';
import OpenAI from 'openai';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] as string) : fallback;
};
const REQUESTS = Number(arg('requests', '50'));
const MAX_TOKENS = Number(arg('max-tokens', '64'));
const PRESET = arg('preset', 'tiny-llama') as PresetName;
const CONTEXT = Number(arg('context', '256'));
const DEVICE = arg('device', 'cpu');
const MAX_BATCH = Number(arg('max-batch', '64'));

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
};
const ms = (values: number[]) => ({
  p50: Math.round(percentile(values, 50)),
  p99: Math.round(percentile(values, 99)),
  max: Math.round(Math.max(...values)),
});

const prefix = `rlhf-bench-${randomBytes(5).toString('hex')}`;
const artifactDir = await mkdtemp(join(tmpdir(), 'rlhf-bench-chat-'));
const database = await createTestDatabase({
  serverUrl: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test',
});
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const logger = createLogger('bench-chat', process.env.LOG_LEVEL ?? 'silent');
const app = await buildApp({
  databaseUrl: database.url,
  redisUrl,
  artifactDir,
  adminKey: randomBytes(24).toString('hex'),
  logger,
  redisPrefix: prefix,
  consumerName: 'bench',
  consumeEvents: false,
});
const inference = await startInferenceWorker({
  redisUrl,
  artifactDir,
  device: DEVICE,
  workerId: 'bench-inference',
  logger,
  prefix,
  maxBatch: MAX_BATCH,
});

try {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('not listening on TCP');
  const team = await createTeam(app.services.prisma, `bench-${randomBytes(4).toString('hex')}`, {
    requestsPerMinute: 100_000,
  });
  const { key } = await createApiKey(app.services.prisma, { teamId: team.id, name: 'bench' });
  const config = { ...presetConfig(PRESET), maxPositions: CONTEXT };
  const { 'README.md': _readme, ...files } = hfModelFiles(
    { config, params: initParams(config, 1) },
    { tokenizer: new ByteTokenizer() },
  );
  const upload = await app.inject({
    method: 'POST',
    url: '/v1/models?name=bench-model',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/x-tar' },
    payload: Buffer.from(writeTar(files)),
  });
  if (upload.statusCode !== 201) throw new Error(`model upload failed: ${upload.body}`);
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${address.port}/v1`, apiKey: key, maxRetries: 0 });

  /** One streamed request: time to first text, total time, completion tokens. */
  async function chat(i: number) {
    const start = performance.now();
    let first = 0;
    let tokens = 0;
    const stream = await client.chat.completions.create({
      model: 'bench-model',
      messages: [{ role: 'user', content: `sort: ${i % 10} ${(i * 7) % 10} ${(i * 3) % 10}` }],
      max_tokens: MAX_TOKENS,
      temperature: 1,
      seed: i,
      stream: true,
      stream_options: { include_usage: true },
    });
    for await (const chunk of stream) {
      if (first === 0 && chunk.choices[0]?.delta.content) first = performance.now() - start;
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
    }
    return { first, total: performance.now() - start, tokens };
  }

  await chat(-1); // loads the model and builds its session
  const before = inference.stats();
  const start = performance.now();
  const results = await Promise.all(Array.from({ length: REQUESTS }, (_, i) => chat(i)));
  const wall = (performance.now() - start) / 1000;
  const after = inference.stats();
  const tokens = results.reduce((sum, r) => sum + r.tokens, 0);
  console.log(
    JSON.stringify(
      {
        bench: 'chat',
        date: new Date().toISOString(),
        machine: {
          cpus: os.cpus().length,
          model: os.cpus()[0]?.model,
          node: process.version,
          loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100),
        },
        device: inference.device,
        model: { preset: PRESET, context: CONTEXT },
        requests: REQUESTS,
        maxTokens: MAX_TOKENS,
        wallSeconds: Math.round(wall * 1000) / 1000,
        completionTokens: tokens,
        tokensPerSecond: Math.round(tokens / wall),
        timeToFirstTokenMs: ms(results.map((r) => r.first)),
        latencyMs: ms(results.map((r) => r.total)),
        generationCalls: after.generationCalls - before.generationCalls,
        maxBatch: MAX_BATCH,
        largestBatch: after.largestBatch,
      },
      null,
      2,
    ),
  );
} finally {
  await inference.close();
  await app.close();
  const redis = new Redis(redisUrl);
  for (const k of await redis.keys(`${prefix}:*`)) await redis.del(k);
  redis.disconnect();
  await rm(artifactDir, { recursive: true, force: true });
  await database.drop();
}
