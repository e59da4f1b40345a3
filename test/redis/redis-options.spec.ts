/**
 * The Redis lookup's option parsing, without a server: the url, the lease settings and the
 * command timeout (`commandTimeout`, and its deprecated alias `commandTimeoutMs`).
 */
import { describe, expect, it } from 'vitest';
import { FAST_LEASE, GrainConfigurationError, RedisIdentityLookup, SAFE_LEASE } from 'nestjs-grains';
import { commandTimeoutMs, leaseSettings } from '../../lib/cluster/identity/redis/redis-lookup-options.js';
import { parseRedisUrl } from '../../lib/cluster/identity/redis/redis-url.js';

describe('parseRedisUrl', () => {
  it('reads host, port, credentials and db; the port defaults to 6379', () => {
    expect(parseRedisUrl('redis://h.example')).toEqual({ host: 'h.example', port: 6379 });
    expect(parseRedisUrl('redis://us%40er:p%3Ass@10.0.0.1:7000/3')).toEqual({ host: '10.0.0.1', port: 7000, username: 'us@er', password: 'p:ss', db: 3 });
  });

  it('turns on TLS for rediss://, and ignores a db that is not a number', () => {
    expect(parseRedisUrl('rediss://h:6380/x')).toEqual({ host: 'h', port: 6380, tls: {} });
  });

  it('refuses any other scheme', () => {
    expect(() => parseRedisUrl('http://h:6379')).toThrow(GrainConfigurationError);
    expect(() => new RedisIdentityLookup({ url: 'tcp://h' })).toThrow(/must start with redis:\/\/ or rediss:\/\//);
  });
});

describe('leaseSettings', () => {
  it('names the presets, fast by default, and takes settings of your own', () => {
    expect(leaseSettings(undefined)).toBe(FAST_LEASE);
    expect(leaseSettings('safe')).toBe(SAFE_LEASE);
    const own = { leaseMs: 3_000, renewIntervalMs: 500, marginMs: 500, stallToleranceMs: 1_000 };
    expect(leaseSettings(own)).toBe(own);
  });

  it('refuses settings under which a lease cannot be kept', () => {
    const bad = { leaseMs: 1_000, renewIntervalMs: 600, marginMs: 500, stallToleranceMs: 500 };
    expect(() => leaseSettings(bad)).toThrow(GrainConfigurationError);
    expect(() => new RedisIdentityLookup({ lease: { ...FAST_LEASE, stallToleranceMs: FAST_LEASE.leaseMs } })).toThrow(/RedisIdentityLookup lease/);
  });
});

describe('commandTimeout', () => {
  it('is 1 s by default and takes a Duration', () => {
    expect(commandTimeoutMs({})).toBe(1_000);
    expect(commandTimeoutMs({ commandTimeout: '500ms' })).toBe(500);
    expect(commandTimeoutMs({ commandTimeout: '2s' })).toBe(2_000);
    expect(commandTimeoutMs({ commandTimeout: 300 })).toBe(300);
  });

  it('still takes the deprecated commandTimeoutMs, and commandTimeout wins over it', () => {
    expect(commandTimeoutMs({ commandTimeoutMs: 300 })).toBe(300);
    expect(commandTimeoutMs({ commandTimeout: '2s', commandTimeoutMs: 300 })).toBe(2_000);
  });

  it('refuses what is not a positive duration, naming the option', () => {
    expect(() => new RedisIdentityLookup({ commandTimeout: 0 })).toThrow(/RedisIdentityLookup commandTimeout/);
    expect(() => commandTimeoutMs({ commandTimeout: 'soon' as '1s' })).toThrow(GrainConfigurationError);
  });
});
