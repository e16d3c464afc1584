// Load on the API over real HTTP (an in-process API on real Redis and Postgres, as the tests run it; no
// workers, so runs stay queued): a burst of concurrent submissions with their retries (each run created
// exactly once), status polling at a fixed rate, and another team's latency before and during the burst.
// Prints JSON. Run: npm run bench:load [-- --submissions 500 --rate 200 --seconds 10]
// Needs DATABASE_URL (a server where databases can be created; default postgresql://postgres@127.0.0.1:5432/test)
// and REDIS_URL (default redis://127.0.0.1:6379). It creates a database of its own and drops it after.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, createApiKey, createTeam, LISTEN_BACKLOG } from '@rlhf/api';
import { createLogger } from '@rlhf/config';
import { createTestDatabase } from '@rlhf/db';
import { Redis } from 'ioredis';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const SUBMISSIONS = arg('submissions', 500);
const RATE = arg('rate', 200);
const SECONDS = arg('seconds', 10);

// CPU time of this process (API and client) per request: what the shared machine's load moves least.
const cpuMs = (since: NodeJS.CpuUsage, requests: number) => {
  const { user, system } = process.cpuUsage(since);
  return Math.round(((user + system) / 1000 / requests) * 100) / 100;
};
const loadavg = () => os.loadavg().map((l) => Math.round(l * 100) / 100);
const loadBefore = loadavg();

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
};
const summary = (ms: number[]) => ({
  n: ms.length,
  p50: Math.round(percentile(ms, 50) * 10) / 10,
  p99: Math.round(percentile(ms, 99) * 10) / 10,
  max: Math.round(Math.max(...ms) * 10) / 10,
});
const tally = (statuses: number[]) => {
  const out: Record<string, number> = {};
  for (const s of statuses) out[s] = (out[s] ?? 0) + 1;
  return out;
};

const prefix = `rlhf-bench-${randomBytes(5).toString('hex')}`;
const artifactDir = await mkdtemp(join(tmpdir(), 'rlhf-bench-'));
const database = await createTestDatabase({
  serverUrl: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test',
});
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const app = await buildApp({
  databaseUrl: database.url,
  redisUrl,
  artifactDir,
  adminKey: randomBytes(24).toString('hex'),
  logger: createLogger('bench-load', process.env.LOG_LEVEL ?? 'silent'),
  redisPrefix: prefix,
  consumerName: 'bench',
  consumeEvents: false,
});

try {
  await app.listen({ port: 0, host: '127.0.0.1', backlog: LISTEN_BACKLOG });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('not listening on TCP');
  const url = `http://127.0.0.1:${address.port}`;

  const team = async (limits: { maxActiveStages?: number }) => {
    const t = await createTeam(app.services.prisma, `bench-${randomBytes(5).toString('hex')}`, {
      requestsPerMinute: 1_000_000,
      ...limits,
    });
    const { key } = await createApiKey(app.services.prisma, { teamId: t.id, name: 'bench' });
    const headers = { authorization: `Bearer ${key}` };
    const upload = await fetch(`${url}/v1/datasets?name=sft&kind=sft`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/jsonl' },
      body: '{"prompt":"sort: 3 1 2","response":"1 2 3"}\n{"prompt":"sort: 9 7","response":"7 9"}\n',
    });
    const { id } = (await upload.json()) as { id: string };
    const spec = JSON.stringify({
      model: { preset: 'tiny' },
      stages: [{ kind: 'sft', datasetId: id, config: { maxSteps: 10 } }],
    });
    return { id: t.id, headers, spec };
  };
  type BenchTeam = Awaited<ReturnType<typeof team>>;

  const post = async (t: BenchTeam, idempotencyKey: string) => {
    const started = performance.now();
    const response = await fetch(`${url}/v1/runs`, {
      method: 'POST',
      headers: { ...t.headers, 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
      body: t.spec,
    });
    const body = (await response.json()) as { id?: string };
    return { status: response.status, ms: performance.now() - started, id: body.id };
  };
  const get = async (t: BenchTeam, path: string) => {
    const started = performance.now();
    const response = await fetch(`${url}${path}`, { headers: t.headers });
    await response.arrayBuffer();
    return { status: response.status, ms: performance.now() - started };
  };

  const busy = await team({ maxActiveStages: 2 });
  const quiet = await team({});
  // warm-up: connections, prepared statements, JIT
  for (let i = 0; i < 10; i++) await post(quiet, `warm-${i}`);

  // Another team, idle: sequential POSTs and GETs.
  const idlePost: number[] = [];
  const idleGet: number[] = [];
  for (let i = 0; i < 40; i++) idlePost.push((await post(quiet, `idle-${i}`)).ms);
  for (let i = 0; i < 40; i++) idleGet.push((await get(quiet, '/v1/runs?limit=5')).ms);

  // The burst: SUBMISSIONS concurrent POSTs of one team, each with its own Idempotency-Key, each raced
  // by a retry with the same key; meanwhile the quiet team submits and reads one request at a time.
  const tag = randomBytes(3).toString('hex');
  let bursting = true;
  const during = (async () => {
    const posts: number[] = [];
    const gets: number[] = [];
    while (bursting) {
      posts.push((await post(quiet, `during-${tag}-${posts.length}`)).ms);
      gets.push((await get(quiet, '/v1/runs?limit=5')).ms);
    }
    return { posts, gets };
  })();
  during.catch(() => {}); // awaited below; a failed burst reports its own error
  const burstStarted = performance.now();
  const burstCpu = process.cpuUsage();
  const [first, retries] = await Promise.all([
    Promise.all(Array.from({ length: SUBMISSIONS }, (_, i) => post(busy, `${tag}-${i}`))),
    Promise.all(Array.from({ length: SUBMISSIONS }, (_, i) => post(busy, `${tag}-${i}`))),
  ]).finally(() => {
    bursting = false; // also on a failed burst, so that its error is the one reported
  });
  const burstSeconds = (performance.now() - burstStarted) / 1000;
  const quietDuring = await during;
  const burstCpuMs = cpuMs(burstCpu, 2 * SUBMISSIONS + 2 * quietDuring.posts.length);
  const all = [...first, ...retries];
  const runs = await app.services.prisma.run.count({ where: { teamId: busy.id } });
  const ids = new Set(all.map((r) => r.id));
  const sameIdPerKey = first.every((r, i) => r.id !== undefined && r.id === retries[i].id);
  const statuses = tally(all.map((r) => r.status));
  const exactlyOnce = runs === SUBMISSIONS && ids.size === SUBMISSIONS && sameIdPerKey;

  // Status polling: RATE GET /v1/runs/:id per second for SECONDS, open loop (a request is sent every
  // 1/RATE s whatever the earlier ones are doing), over the busy team's queued runs.
  const runIds = [...ids].filter((id): id is string => id !== undefined);
  const polls: Promise<{ status: number; ms: number }>[] = [];
  const pollStarted = performance.now();
  const pollCpu = process.cpuUsage();
  const total = RATE * SECONDS;
  for (let i = 0; i < total; i++) {
    const due = pollStarted + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    polls.push(get(busy, `/v1/runs/${runIds[i % runIds.length]}`));
  }
  const polled = await Promise.all(polls);
  const pollSeconds = (performance.now() - pollStarted) / 1000;
  const pollCpuMs = cpuMs(pollCpu, polls.length);

  const result = {
    bench: 'load',
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model,
      memGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      loadavgBefore: loadBefore,
      loadavg: loadavg(),
    },
    submissions: {
      concurrent: SUBMISSIONS,
      racingRetries: SUBMISSIONS,
      statuses,
      runsCreated: runs,
      distinctIds: ids.size,
      exactlyOnce,
      seconds: Math.round(burstSeconds * 100) / 100,
      cpuMsPerRequest: burstCpuMs,
      firstPost: summary(first.map((r) => r.ms)),
      all: summary(all.map((r) => r.ms)),
    },
    otherTeam: {
      idlePost: summary(idlePost),
      duringBurstPost: summary(quietDuring.posts),
      idleGet: summary(idleGet),
      duringBurstGet: summary(quietDuring.gets),
    },
    polling: {
      targetRate: RATE,
      achievedRate: Math.round(polled.length / pollSeconds),
      seconds: Math.round(pollSeconds * 100) / 100,
      statuses: tally(polled.map((r) => r.status)),
      cpuMsPerRequest: pollCpuMs,
      latency: summary(polled.map((r) => r.ms)),
    },
  };
  console.log(JSON.stringify(result, null, 2));
  if (!exactlyOnce) process.exitCode = 1;
} finally {
  await app.close();
  const redis = new Redis(redisUrl);
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
    if (found.length > 0) await redis.del(...found);
    cursor = next;
  } while (cursor !== '0');
  redis.disconnect();
  await rm(artifactDir, { recursive: true, force: true });
  await database.drop();
}
