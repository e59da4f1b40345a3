/** The `url` option of RedisIdentityLookup: a redis:// or rediss:// URL read as ioredis options. */
import type { RedisOptions } from 'ioredis';
import { GrainConfigurationError } from '../../errors.js';

/** The port a URL without one means. */
const DEFAULT_PORT = 6379;

/**
 * `redis://[user:password@]host[:port][/db]`, or `rediss://…` for TLS, as ioredis options.
 * Throws GrainConfigurationError for anything else; its message shows the URL as
 * `redactRedisUrl` leaves it, and it carries no cause: the URL may hold a password.
 */
export function parseRedisUrl(url: string): RedisOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // NOTE: not rethrown, nor kept as the cause: Node's "Invalid URL" error carries the whole
    // input (the password too) in its `input` property, which loggers print.
    throw invalid(url, 'is not a valid URL');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw invalid(url, 'must start with redis:// or rediss://');
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : undefined;
  let username: string;
  let password: string;
  try {
    username = decodeURIComponent(parsed.username);
    password = decodeURIComponent(parsed.password);
  } catch {
    throw invalid(url, 'has a user name or password that is not validly percent-encoded');
  }
  return {
    host: parsed.hostname,
    port: parsed.port === '' ? DEFAULT_PORT : Number(parsed.port),
    ...(username !== '' && { username }),
    ...(password !== '' && { password }),
    ...(db !== undefined && Number.isInteger(db) && { db }),
    ...(parsed.protocol === 'rediss:' && { tls: {} }),
  };
}

function invalid(url: string, problem: string): GrainConfigurationError {
  return new GrainConfigurationError(
    `RedisIdentityLookup url "${redactRedisUrl(url)}" ${problem}: use redis://[user:password@]host[:port][/db], or rediss://… for TLS (percent-encode any of : / ? # @ % in the password).`,
  );
}

/**
 * `url` fit for a message or a log: the user info replaced by `***` (the user name kept when
 * a password follows it), and everything after a `?` or `#` too (ioredis reads a password
 * from the query). Works on strings that are not valid URLs (an unencoded `/`, `@`, `#` or
 * `?` in the password): everything from the scheme to the last `@` counts as user info, so
 * it errs on hiding more.
 */
export function redactRedisUrl(url: string): string {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(url)?.[0] ?? '';
  let rest = url.slice(scheme.length);
  let userinfo = '';
  const at = rest.lastIndexOf('@');
  if (at !== -1) {
    const colon = rest.indexOf(':');
    userinfo = `${colon !== -1 && colon < at ? rest.slice(0, colon + 1) : ''}***@`;
    rest = rest.slice(at + 1);
  }
  const tail = rest.search(/[?#]/);
  if (tail !== -1) rest = `${rest.slice(0, tail + 1)}***`;
  return scheme + userinfo + rest;
}
