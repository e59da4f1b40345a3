import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, type GrainContext, RedisIdentityLookup, type RedisIdentityLookupOptions, type TurnGuard } from 'nestjs-grains';
import { outcome, RecordingLogger } from '../support/cluster.js';
import { type RedisHandle, startRedis } from '../support/redis-server.js';

class StampGrain {
  constructor(readonly ctx: GrainContext) {}
  stamp(): { epoch: number; activation: string } {
    return { epoch: this.ctx.epoch, activation: this.ctx.activationId };
  }
}

/** The Redis lookup, with a turn guard that can refuse the next turn start once (the lease itself stays valid). */
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

/**
 * An activation fenced on its own (a turn could not start within the lease) while its member
 * keeps its incarnation leaves its claim in Redis owned by that incarnation. The activation
 * created for the next call must not run under the same claim — same epoch, same activation
 * id — beside the fenced one, whose turns may still be running: it is claimed afresh.
 */
describe('re-creating an activation after it was fenced on its own', () => {
  let redis: RedisHandle;
  let cluster: Cluster | undefined;
  beforeAll(async () => {
    redis = await startRedis({ label: 'recreate-after-fence' });
  });
  afterAll(async () => {
    await redis.stop();
  });
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it('claims the identity again, with a larger epoch and a new activation id', async () => {
    const lookup = new OneRefusalLookup({ url: redis.url });
    cluster = new Cluster({ clusterName: 'recreate', logger: new RecordingLogger(), identityLookup: lookup, requestTimeout: '3s' });
    cluster.registerKind({ name: 'stamp', grainClass: StampGrain, create: (ctx) => new StampGrain(ctx) });
    await cluster.start();
    const stamps = cluster.client<StampGrain>('stamp');
    const first = await stamps.get('s').stamp();
    const incarnation = cluster.incarnation;

    lookup.refuseNextStart = true; // the next turn start is refused: the activation is fenced
    const next = await outcome(stamps.get('s').stamp());
    expect(cluster.stats().fenced).toBe(1);
    expect(cluster.incarnation).toBe(incarnation); // the member itself was not fenced

    expect(next.ok).toBe(true);
    const second = (next as { value: { epoch: number; activation: string } }).value;
    expect(second.activation).not.toBe(first.activation);
    expect(second.epoch).toBeGreaterThan(first.epoch);
  });
});
