/**
 * The lookup's own Redis connection: opened so that no lookup command waits or is resent,
 * and checked once that the server never evicts an entry.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { ClusterUnavailableError, GrainConfigurationError } from '../../errors.js';
import type { LookupMember } from '../identity-lookup.js';

/** The only `maxmemory-policy` under which no entry can disappear. */
const REQUIRED_EVICTION_POLICY = 'noeviction';

/** A connection for lookup commands (not connected yet: see `connect`). */
export function openConnection(options: RedisOptions, commandTimeoutMs: number): Redis {
  const redis = new Redis({
    ...options,
    // NOTE: lookup commands never wait in an offline queue or get resent after a
    // reconnect: a call fails (typed) within its deadline instead of claiming late.
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    lazyConnect: true,
  });
  redis.on('error', () => {});
  return redis;
}

/** Connect; a failure disconnects (no retries) and is ClusterUnavailableError. */
export async function connect(redis: Redis): Promise<void> {
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new ClusterUnavailableError(`RedisIdentityLookup could not connect to Redis: ${(error as Error).message}`);
  }
}

/**
 * Refuse (GrainConfigurationError) a Redis that may evict keys; warn when CONFIG is disabled
 * so the policy cannot be read.
 */
export async function checkEvictionPolicy(redis: Redis, member: Pick<LookupMember, 'log'>): Promise<void> {
  let reply: unknown;
  try {
    reply = await redis.config('GET', 'maxmemory-policy');
  } catch {
    member.log(
      'warn',
      'RedisIdentityLookup could not read maxmemory-policy (CONFIG is disabled?). It must be "noeviction": an evicted entry would allow a second activation.',
    );
    return;
  }
  const policy = Array.isArray(reply) ? reply[1] : undefined;
  if (policy !== REQUIRED_EVICTION_POLICY) {
    throw new GrainConfigurationError(
      `Redis maxmemory-policy is "${String(policy)}"; RedisIdentityLookup requires "noeviction" (an evicted entry would allow a second activation). Set it with CONFIG SET maxmemory-policy noeviction or in redis.conf.`,
    );
  }
}
