/**
 * The lease (lib/cluster/identity/redis/redis-lease.ts) and its renewer thread
 * (lease-keeper.ts, lease-worker.js) against a real redis-server, with a TCP proxy in front of
 * the renewer so a join can be held mid-way: a join always settles, and a member whose lease
 * is lost while it joins still ends up holding one.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { FAST_LEASE } from 'nestjs-grains';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LeaseKeeper } from '../../lib/cluster/identity/redis/lease-keeper.js';
import { RedisKeys } from '../../lib/cluster/identity/redis/redis-keys.js';
import { RedisLease } from '../../lib/cluster/identity/redis/redis-lease.js';
import { scripts } from '../../lib/cluster/identity/redis/redis-scripts.js';
import { eventually, sleep } from '../support/cluster.js';
import { type RedisHandle, startRedis } from '../support/redis-server.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

/** How long a join that should have settled is given before the test calls it hung. */
const HANG_MS = 3_000;
/** A generation start this long ago: no join waits for it. */
const OLD_GENERATION_MS = 60_000;

const keys = new RedisKeys('grains', 'lease-test');
const hung = Symbol('still waiting');

/** A member as the lease sees it: fencing takes a new incarnation, and is counted. */
function fakeMember(): { incarnation: string; fenced: number; fenceAll(reason: string): void; log(): void } {
  return {
    incarnation: randomUUID(),
    fenced: 0,
    fenceAll() {
      this.fenced++;
      this.incarnation = randomUUID();
    },
    log() {},
  };
}

/**
 * A connection whose next generation read (the first `info` or `evalsha` after `hold()`)
 * waits until `open()`: a reconnect's read that is still in flight.
 */
function gatedConnection(redis: Redis): { connection: Redis; hold(): void; open(): void } {
  let gate: Promise<void> | undefined;
  let open: () => void = () => {};
  const connection = new Proxy(redis, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      if ((property === 'info' || property === 'evalsha') && gate !== undefined) {
        const held = gate;
        gate = undefined;
        return async (...args: unknown[]) => {
          await held;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
  return {
    connection,
    hold: () => (gate = new Promise<void>((resolve) => (open = resolve))),
    open: () => open(),
  };
}

describe('the lease and its renewer thread (real redis-server)', () => {
  let redis: RedisHandle;
  let proxy: TcpProxy | undefined;
  const cleanups: Array<() => Promise<void> | void> = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await proxy?.close();
    proxy = undefined;
    await redis.flushAll();
  });

  /** A generation with this server's run_id that began a minute ago. */
  async function oldGeneration(id: string): Promise<string> {
    const generation = `${id}:${Date.now() - OLD_GENERATION_MS}:${await redis.runId()}`;
    await redis.command('SET', keys.generation, generation);
    return generation;
  }

  it('settles a join whose renewer thread ends before it answered, so the join can be retried', async () => {
    proxy = await startTcpProxy({ port: redis.port });
    proxy.blackhole(); // the renewer connects, and nothing ever answers its join
    const generation = await oldGeneration('aaaaaaaaaaaaaaaa');
    const incarnation = randomUUID();
    const keeper = new LeaseKeeper(FAST_LEASE);
    cleanups.push(() => keeper.stop());
    const joining = keeper.start({
      redis: { host: proxy.host, port: proxy.port },
      join: scripts.join,
      renew: scripts.renew,
      keys: [keys.generation, keys.lease(incarnation), keys.incarnations],
      args: [generation, incarnation, FAST_LEASE.leaseMs],
      onEnd: () => {},
    });
    expect(await eventually(() => proxy!.counters().accepted > 0, 5_000)).toBe(true);
    keeper.stop(); // the renewer thread ends before its join answered
    const settled = await Promise.race([joining, sleep(HANG_MS).then(() => hung)]);
    expect(settled, 'the join never settled').not.toBe(hung);
    expect(String(settled)).not.toBe('OK');
  });

  it('still takes a lease when a reconnect finds the generation changed while a join waits for its renewer thread', async () => {
    proxy = await startTcpProxy({ port: redis.port }); // the renewer's way to Redis
    const g1 = await oldGeneration('aaaaaaaaaaaaaaaa');
    const main = await redis.connect();
    cleanups.push(() => main.disconnect());
    const gated = gatedConnection(main);
    const member = fakeMember();
    const lease = new RedisLease(FAST_LEASE, { host: proxy.host, port: proxy.port }, 1_000);
    cleanups.push(() => lease.shutdown());
    lease.attach({ redis: gated.connection, keys, member });
    await lease.join();
    expect(lease.joined).toBe(true);
    expect(lease.generation).toBe(g1);

    // A reconnect starts reading the generation; its read is held in flight.
    gated.hold();
    const reconnect = lease.onReconnect();
    // Meanwhile the lease is lost (a script answered GEN), so the member rejoins, and its
    // join waits for a renewer thread whose connection goes nowhere yet.
    proxy.blackhole();
    const accepted = proxy.counters().accepted;
    lease.generationChanged(g1);
    expect(await eventually(() => proxy!.counters().accepted > accepted, 5_000)).toBe(true);
    // Redis lost its data again meanwhile; the reconnect's read finds that out now.
    const g2 = await oldGeneration('bbbbbbbbbbbbbbbb');
    gated.open();
    await reconnect;
    proxy.pass();
    expect(await eventually(() => lease.joined, HANG_MS), 'the member never took a lease again').toBe(true);
    expect(lease.generation).toBe(g2);
    expect(await redis.command('GET', keys.lease(member.incarnation))).toBe(member.incarnation);
  });
});
