import { Redis } from 'ioredis';

/**
 * An ioredis connection. `worker: true` for BullMQ workers, pub/sub subscribers and blocking reads
 * (BullMQ requires `maxRetriesPerRequest: null` there); API-side producers keep ioredis' default so a
 * request fails fast when Redis is down.
 */
export function createRedis(url: string, opts: { worker?: boolean } = {}): Redis {
  return new Redis(url, opts.worker ? { maxRetriesPerRequest: null } : {});
}
