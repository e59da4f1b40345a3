import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, type GrainContext, RedisIdentityLookup, type RedisIdentityLookupOptions, type TurnGuard } from 'nestjs-grains';
import { outcome, RecordingLogger } from '../support/cluster.js';
import { type RedisHandle, startRedis } from '../support/redis-server.js';
import { type HistogramPoint, registerSdk, type TestSdk, withAttributes } from './sdk.js';

class StampGrain {
  constructor(readonly ctx: GrainContext) {}
  stamp(): number {
    return this.ctx.epoch;
  }
}

/** The Redis lookup, with a turn guard that can refuse the next turn start once: that activation is fenced. */
class OneRefusalLookup extends RedisIdentityLookup {
  refuseNextStart = false;
  constructor(options: RedisIdentityLookupOptions) {
    super(options);
    const real = this.turnGuard;
    (this as { turnGuard: TurnGuard }).turnGuard = {
      canStart: (at) => {
        if (!this.refuseNextStart) return real.canStart(at);
        this.refuseNextStart = false;
        return false;
      },
      canSettle: (at) => real.canSettle(at),
    };
  }
}

describe('metrics of the Redis lookup and of fencing (real redis-server)', () => {
  let redis: RedisHandle;
  let cluster: Cluster | undefined;
  let sdk: TestSdk | undefined;
  beforeAll(async () => {
    redis = await startRedis({ label: 'otel-lookup' });
  });
  afterAll(async () => {
    await redis.stop();
  });
  afterEach(async () => {
    await cluster?.shutdown();
    await sdk?.shutdown();
    cluster = sdk = undefined;
  });

  it('times each claim round trip, and counts a fenced activation and the call it sent on', async () => {
    sdk = registerSdk();
    const lookup = new OneRefusalLookup({ url: redis.url });
    cluster = new Cluster({ clusterName: 'otel-lookup', logger: new RecordingLogger(), identityLookup: lookup, requestTimeout: '3s' });
    cluster.registerKind({ name: 'stamp', grainClass: StampGrain, create: (ctx) => new StampGrain(ctx) });
    await cluster.start();
    const stamps = cluster.client<StampGrain>('stamp');
    const first = await stamps.get('s').stamp();
    lookup.refuseNextStart = true; // the next turn may not start: the activation is fenced, the call sent on
    const second = await outcome(stamps.get('s').stamp());
    expect(second).toMatchObject({ ok: true });
    expect((second as { value: number }).value).toBeGreaterThan(first);

    const lookups = await sdk.points<HistogramPoint['value']>('nestjs_grains.lookup.duration');
    const claimed = withAttributes(lookups, { 'nestjs_grains.lookup.script': 'claim', 'nestjs_grains.lookup.reply': 'CLAIMED' });
    // The first activation, and the fresh claim that replaced the fenced one.
    expect(claimed.map((p) => p.value.count)).toEqual([2]);
    expect(claimed[0]!.value.sum).toBeGreaterThan(0);
    expect(withAttributes(await sdk.points('nestjs_grains.fences'), { 'nestjs_grains.kind': 'stamp' }).map((p) => p.value)).toEqual([1]);
    expect(withAttributes(await sdk.points('nestjs_grains.call.redirects'), { 'nestjs_grains.kind': 'stamp' }).map((p) => p.value)).toEqual([1]);

    await cluster.shutdown(); // releases the live activation's claim
    cluster = undefined;
    const released = withAttributes(await sdk.points<HistogramPoint['value']>('nestjs_grains.lookup.duration'), { 'nestjs_grains.lookup.script': 'release' });
    expect(released.map((p) => [p.value.count, p.attributes['error.type']])).toEqual([[1, undefined]]);
  });
});
