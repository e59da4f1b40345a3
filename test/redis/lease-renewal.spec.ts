import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, FAST_LEASE, type GrainContext, RedisIdentityLookup, StaticProvider } from 'nestjs-grains';
import { eventually, RecordingLogger, sleep } from '../support/cluster.js';
import { freePort } from '../support/free-port.js';
import { type RedisHandle, startRedis } from '../support/redis-server.js';

class WhoGrain {
  constructor(readonly ctx: GrainContext) {}
  who(): { activation: string; epoch: number } {
    return { activation: this.ctx.activationId, epoch: this.ctx.epoch };
  }
}

const CLUSTER = 'renewal';
const leaseKey = (incarnation: string) => `{grains:${CLUSTER}}:lease:${incarnation}`;

/**
 * Renewal is compare-and-extend (lua/renew.lua), from the renewer thread: a held lease is
 * kept past its length, and a lease that is gone from Redis stays gone — the member must
 * notice, drop its activations and rejoin as a new incarnation. A renewal that extended (or
 * recreated) whatever it found would let a member whose lease lapsed (a stall, a partition)
 * serve beside the member that has since claimed its grains. Until this file, only the
 * multi-process fault suite looked at renewal.
 */
describe('lease renewal (real redis-server)', () => {
  let redis: RedisHandle;
  let member: Cluster | undefined;
  beforeAll(async () => {
    redis = await startRedis({ label: 'lease-renewal' });
  });
  afterAll(async () => {
    await redis?.stop();
  });
  afterEach(async () => {
    await member?.shutdown();
    member = undefined;
    await redis.flushAll();
  });

  async function start(): Promise<Cluster> {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const cluster = new Cluster({
      clusterName: CLUSTER,
      logger: new RecordingLogger(),
      identityLookup: new RedisIdentityLookup({ url: redis.url, lease: 'fast' }),
      provider: new StaticProvider({ members: [address], probeInterval: 20 }),
      remote: { host: '127.0.0.1', port },
    });
    cluster.registerKind({ name: 'who', grainClass: WhoGrain, create: (ctx) => new WhoGrain(ctx) });
    member = cluster;
    await cluster.start();
    expect(await eventually(() => cluster.members().length === 1, 5_000)).toBe(true);
    return cluster;
  }

  it('keeps a held lease past its length: same incarnation, same activation', async () => {
    const cluster = await start();
    const first = await cluster.client<WhoGrain>('who').get('w').who();
    const incarnation = cluster.incarnation;
    await sleep(FAST_LEASE.leaseMs * 2);
    expect(cluster.incarnation).toBe(incarnation);
    expect(Number(await redis.command('PTTL', leaseKey(incarnation)))).toBeGreaterThan(0);
    expect(await cluster.client<WhoGrain>('who').get('w').who()).toEqual(first);
  });

  it('does not bring back a lease that is gone from Redis: the member drops its activations and rejoins as a new incarnation', async () => {
    const cluster = await start();
    const first = await cluster.client<WhoGrain>('who').get('w').who();
    const incarnation = cluster.incarnation;
    expect(Number(await redis.command('PTTL', leaseKey(incarnation)))).toBeGreaterThan(0);

    // As if the lease had lapsed in Redis (the member stalled, or lost Redis for a lease) while
    // the member still counts on it: the next renewal must find it gone, not extend it.
    await redis.command('DEL', leaseKey(incarnation));
    expect(await eventually(() => cluster.incarnation !== incarnation, 5_000, 10)).toBe(true);
    expect(await redis.command('EXISTS', leaseKey(incarnation))).toBe(0);

    // the grain is claimed afresh under the new incarnation: a new activation, a higher epoch
    const second = await cluster.client<WhoGrain>('who').get('w').who();
    expect(second.activation).not.toBe(first.activation);
    expect(second.epoch).toBeGreaterThan(first.epoch);
  });
});
