// What the plugins share: the database, Redis connections, the BullMQ handles, the artifact store,
// the SSE hub and the metrics. Created once per app, closed when the app closes.
import { hostname } from 'node:os';
import { type ArtifactStore, createArtifactStore } from '@rlhf/artifacts';
import type { Logger } from '@rlhf/config';
import { createPrisma, type PrismaClient } from '@rlhf/db';
import {
  createFlowProducer,
  createRedis,
  createStageQueue,
  DEFAULT_PREFIX,
  type StageQueue,
} from '@rlhf/queue';
import type { FlowProducer } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  createFailedAuthGuard,
  createKeyCache,
  type FailedAuthGuard,
  type FailedAuthLimits,
  type KeyCache,
} from './auth.js';
import { recordRunEvent } from './events/history.js';
import { createEventHub, type EventHub } from './events/hub.js';
import { createStreamTokens, type StreamTokens } from './stream-tokens.js';
import { createSampler, type Sampler } from './generate.js';
import { type ApiMetrics, createApiMetrics } from './metrics.js';

export interface ApiOptions {
  databaseUrl: string;
  redisUrl: string;
  /** Directory of the artifact store (datasets, checkpoints, exports). */
  artifactDir: string;
  /** Bootstrap admin key (ADMIN_KEY); admin keys stored in the database work too. */
  adminKey?: string;
  logger: Logger;
  /** Namespace of every Redis key, BullMQ's included (default 'rlhf'); tests use their own. */
  redisPrefix?: string;
  /** Run the event consumer in this process (default true). */
  consumeEvents?: boolean;
  /** Consumer name in the events consumer group (default: the hostname). */
  consumerName?: string;
  /** Events read but not acked for this long are claimed again (default 30 s). */
  claimIdleMs?: number;
  /** Runs a team may have waiting for admission before POST /v1/runs is a 429 (default 1000). */
  maxWaitingRuns?: number;
  /** The artifact store (default: a directory store at artifactDir); tests inject faulty ones. */
  artifacts?: ArtifactStore;
  /** Failed authentications per client address before 429, and how long a refused key is remembered. */
  failedAuth?: FailedAuthLimits;
  /** Admin model directories on shared storage (MODEL_DIRS): registered at start-up and by POST /v1/admin/models/scan. */
  modelDirs?: string[];
  /** How long a verified API key is trusted without a database lookup (default 2 s; 0: never). */
  keyCacheMs?: number;
  /** How often an open SSE stream re-checks its key (a revoked key's streams close; default 5 s). */
  streamKeyCheckMs?: number;
}

export interface Services {
  prisma: PrismaClient;
  /** Commands (queries, publish, rate limits); never blocking reads. */
  redis: Redis;
  queue: StageQueue;
  flows: FlowProducer;
  artifacts: ArtifactStore;
  hub: EventHub;
  /** Signed, expiring tokens that open one run's SSE stream (EventSource cannot send headers). */
  streamTokens: StreamTokens;
  metrics: ApiMetrics;
  /** Samples from finished policies (POST /v1/runs/:runId/generate). */
  sampler: Sampler;
  /** At most a few run submissions per team at once (the rest of a burst waits its turn, in order). */
  teamGate: TeamGate;
  /** Failed authentications by address, refused keys (auth.ts). */
  authGuard: FailedAuthGuard;
  /** Keys verified a moment ago (auth.ts); cleared when a key is revoked or a team's limits change. */
  verifiedKeys: KeyCache;
  prefix: string;
  adminKey: string | undefined;
  logger: Logger;
  options: ApiOptions;
  close(): Promise<void>;
}

/** Submissions of one team handled at once (each takes a database connection for a few queries). */
const TEAM_CONCURRENT_SUBMISSIONS = 4;

/** Runs work keyed by team with at most `limit` at once per team, first come first served. */
export interface TeamGate {
  run<T>(teamId: string, work: () => Promise<T>): Promise<T>;
}

export function createTeamGate(limit: number): TeamGate {
  const gates = new Map<string, { active: number; queue: (() => void)[] }>();
  return {
    async run(teamId, work) {
      let gate = gates.get(teamId);
      if (!gate) {
        gate = { active: 0, queue: [] };
        gates.set(teamId, gate);
      }
      const g = gate;
      if (g.active >= limit) await new Promise<void>((resolve) => g.queue.push(resolve));
      else g.active++;
      try {
        return await work();
      } finally {
        const next = g.queue.shift();
        if (next)
          next(); // the slot passes on
        else if (--g.active === 0) gates.delete(teamId);
      }
    },
  };
}

export async function createServices(options: ApiOptions): Promise<Services> {
  const prefix = options.redisPrefix ?? DEFAULT_PREFIX;
  const prisma = createPrisma(options.databaseUrl);
  const redis = createRedis(options.redisUrl);
  const subscriber = createRedis(options.redisUrl, { worker: true });
  const queue = createStageQueue(redis, prefix);
  const flows = createFlowProducer(redis, prefix);
  // While Redis is down every connection reports each reconnect attempt; /readyz says it once.
  const quiet = (error: Error) => options.logger.debug({ err: error }, 'redis connection error');
  redis.on('error', quiet);
  subscriber.on('error', quiet);
  queue.on('error', quiet);
  flows.on('error', quiet);
  const hub = await createEventHub(redis, subscriber, `${prefix}:api:run-events`, (message) =>
    recordRunEvent(prisma, message),
  );
  const metrics = createApiMetrics(() => queue.getJobCounts());
  const artifacts = options.artifacts ?? createArtifactStore(options.artifactDir);
  const sampler = createSampler((key) => artifacts.path(key), options.logger);
  return {
    prisma,
    redis,
    queue,
    flows,
    artifacts,
    hub,
    streamTokens: createStreamTokens(redis, prefix),
    metrics,
    sampler,
    authGuard: createFailedAuthGuard(options.failedAuth),
    verifiedKeys: createKeyCache(options.keyCacheMs),
    teamGate: createTeamGate(TEAM_CONCURRENT_SUBMISSIONS),
    prefix,
    adminKey: options.adminKey,
    logger: options.logger,
    options: { ...options, consumerName: options.consumerName ?? hostname() },
    async close() {
      await sampler.close();
      await hub.close();
      await queue.close();
      await flows.close();
      await redis.quit().catch(() => redis.disconnect());
      await prisma.$disconnect();
    },
  };
}
