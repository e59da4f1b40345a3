/** The `url` option of RedisIdentityLookup: a redis:// or rediss:// URL read as ioredis options. */
import type { RedisOptions } from 'ioredis';
import { GrainConfigurationError } from '../../errors.js';

/** The port a URL without one means. */
const DEFAULT_PORT = 6379;

/**
 * `redis://[user:password@]host[:port][/db]`, or `rediss://…` for TLS, as ioredis options.
 * Throws GrainConfigurationError for any other scheme.
 */
export function parseRedisUrl(url: string): RedisOptions {
  const parsed = new URL(url);
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:')
    throw new GrainConfigurationError(`RedisIdentityLookup url "${url}" must start with redis:// or rediss://.`);
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : undefined;
  return {
    host: parsed.hostname,
    port: parsed.port === '' ? DEFAULT_PORT : Number(parsed.port),
    ...(parsed.username !== '' && { username: decodeURIComponent(parsed.username) }),
    ...(parsed.password !== '' && { password: decodeURIComponent(parsed.password) }),
    ...(db !== undefined && Number.isInteger(db) && { db }),
    ...(parsed.protocol === 'rediss:' && { tls: {} }),
  };
}
