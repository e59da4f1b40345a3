/**
 * The generation (lib/cluster/identity/redis/redis-generation.ts) against a real
 * redis-server: created when missing (begun at the server's TIME), kept while the same Redis
 * process answers, replaced when another one wrote it, and agreed on by members that replace
 * it at once.
 */
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { generationStart, readGeneration } from '../../lib/cluster/identity/redis/redis-generation.js';
import { type RedisHandle, startRedis } from '../support/redis-server.js';

const KEY = '{grains:gen-test}:gen';
const NONE = { generation: '' };

describe('readGeneration (real redis-server)', () => {
  let redis: RedisHandle;
  let clients: Redis[] = [];
  const client = async () => {
    const c = await redis.connect();
    clients.push(c);
    return c;
  };
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  afterEach(async () => {
    for (const c of clients) c.disconnect();
    clients = [];
    await redis.flushAll();
  });

  it('creates a generation when there is none: random id, start time, run_id', async () => {
    const before = Date.now();
    const { generation, changed, ageMs } = await readGeneration(await client(), KEY, NONE);
    expect(changed).toBe(false); // this member held none
    expect(ageMs).toBe(0); // it began now, by the server's clock
    const [id, startedAt, runId] = generation.split(':');
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(Number(startedAt)).toBeGreaterThanOrEqual(before);
    expect(runId).toBe(await redis.runId());
    expect(await redis.command('GET', KEY)).toBe(generation);
  });

  it('takes the start of a new generation from the Redis server clock (TIME), not the member clock', async () => {
    const c = await client();
    vi.useFakeTimers({ toFake: ['Date'], now: new Date('2001-01-01T00:00:00Z') }); // a member whose clock is far off
    let generation: string;
    try {
      ({ generation } = await readGeneration(c, KEY, NONE));
    } finally {
      vi.useRealTimers();
    }
    const [seconds] = (await redis.command('TIME')) as string[];
    expect(Math.abs(Number(generation.split(':')[1]) - Number(seconds) * 1_000)).toBeLessThan(5_000);
  });

  it('keeps the generation while the same Redis process answers, and says when it is not the one held', async () => {
    const c = await client();
    const { generation } = await readGeneration(c, KEY, NONE);
    expect(await readGeneration(c, KEY, { generation })).toMatchObject({ generation, changed: false });
    expect(await readGeneration(c, KEY, { generation: 'an-older-one' })).toMatchObject({ generation, changed: true });
  });

  it('replaces a generation another Redis process wrote (failover), once', async () => {
    const old = `0123456789abcdef:1000:${'f'.repeat(40)}`;
    await redis.command('SET', KEY, old);
    const { generation, changed } = await readGeneration(await client(), KEY, { generation: old });
    expect(changed).toBe(true);
    expect(generation).not.toBe(old);
    expect(generation.endsWith(`:${await redis.runId()}`)).toBe(true);
    expect(await redis.command('GET', KEY)).toBe(generation);
  });

  it('gives members that create it at the same time one generation', async () => {
    const members = await Promise.all([client(), client(), client()]);
    const reads = await Promise.all(members.map((c) => readGeneration(c, KEY, NONE)));
    expect(new Set(reads.map((r) => r.generation)).size).toBe(1);
    expect(await redis.command('GET', KEY)).toBe(reads[0]!.generation);
  });
});

describe('generationStart', () => {
  it('is the time the generation began, or 0 when it cannot be read', () => {
    expect(generationStart('abcd:1700000000000:ef01')).toBe(1_700_000_000_000);
    expect(generationStart('')).toBe(0);
    expect(generationStart('abcd:soon:ef01')).toBe(0);
    expect(generationStart('abcd:-5:ef01')).toBe(0);
  });
});
