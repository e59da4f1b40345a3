/**
 * The lookup's own Redis connection: opened so that no lookup command waits or is resent,
 * and checked once that the server never evicts an entry.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { ClusterUnavailableError, GrainConfigurationError } from '../../errors.js';
import type { LookupMember } from '../identity-lookup.js';
import { LOOKUP_CONNECTION_OPTIONS, workerRedisOptions } from './lease-keeper.js';

/** The only `maxmemory-policy` under which no entry can disappear. */
const REQUIRED_EVICTION_POLICY = 'noeviction';

/**
 * A connection for lookup commands (not connected yet: see `connect`). Throws
 * GrainConfigurationError when the options cannot reach the lease worker thread.
 */
export function openConnection(options: RedisOptions, commandTimeoutMs: number): Redis {
  // NOTE: the same options open the lease worker's connection (lease-keeper.ts); refused here,
  // at setup, since there every join would fail and the start never end.
  workerRedisOptions(options);
  if (options.keyPrefix !== undefined && options.keyPrefix !== '') {
    throw new GrainConfigurationError(
      "RedisIdentityLookup redis options: \"keyPrefix\" (ioredis's) is not supported: the lookup's scripts build keys from their arguments, which ioredis would not prefix. Use the lookup's own keyPrefix option.",
    );
  }
  const redis = new Redis({
    ...options,
    ...LOOKUP_CONNECTION_OPTIONS,
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

/** What Redis answers a client whose user name or password is wrong or missing, or whose user may not run a command. */
const REFUSED_USER = /^(?:WRONGPASS|NOAUTH|NOPERM)\b|^ERR (?:invalid password|invalid username-password pair)/;

/**
 * Connect; a failure disconnects (no retries). Refused credentials (a wrong or missing
 * password or user name) are a GrainConfigurationError, anything else ClusterUnavailableError;
 * both say why, in Redis' or the socket's words (never the options: they hold the password).
 */
export async function connect(redis: Redis): Promise<void> {
  // NOTE: connect() often rejects with a bare "Connection is closed." while the reason
  // (WRONGPASS, NOAUTH, a certificate error, ECONNREFUSED) went to the 'error' event.
  let reason: Error | undefined;
  const onError = (error: Error) => (reason ??= error);
  redis.on('error', onError);
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    const why = reason ?? (error as Error);
    if (REFUSED_USER.test(why.message)) {
      throw new GrainConfigurationError(
        `RedisIdentityLookup: Redis refused the credentials (${why.message}). Check the user name and password of the url (or of the redis options), and the user's ACL.`,
      );
    }
    throw new ClusterUnavailableError(`RedisIdentityLookup could not connect to Redis: ${why.message}`);
  } finally {
    redis.off('error', onError);
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
