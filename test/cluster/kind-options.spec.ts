import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Cluster,
  ClusterUnavailableError,
  GrainConfigurationError,
  GrainTimeoutError,
  InMemoryIdentityLookup,
  type LookupMember,
  type PlacementStrategy,
} from 'nestjs-grains';
import type { ClaimLease } from '../../lib/cluster/identity/redis/redis-claims.js';
import { RedisClaims } from '../../lib/cluster/identity/redis/redis-claims.js';
import { RedisKeys } from '../../lib/cluster/identity/redis/redis-keys.js';
import { ClusterKind, type GrainClass, type KindDefinition } from '../../lib/cluster/kind.js';
import type { Member } from '../../lib/cluster/providers/cluster-provider.js';
import { outcome, RecordingLogger, sleep } from '../support/cluster.js';

class SlowGrain {
  async wait(ms: number): Promise<string> {
    await sleep(ms);
    return 'done';
  }
}

const kind = (name: string, options: Partial<KindDefinition> = {}): KindDefinition => ({
  name,
  grainClass: SlowGrain as GrainClass,
  create: () => new SlowGrain(),
  ...options,
});

/** A strategy that records being asked, and always answers `target`. */
class RecordingPlacement implements PlacementStrategy {
  asked = 0;
  constructor(
    readonly name: string,
    private readonly target?: Member,
  ) {}
  place(): Member | undefined {
    this.asked++;
    return this.target;
  }
}

describe("a kind's own requestTimeout", () => {
  let cluster: Cluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it("is the deadline of calls to that kind made here without a timeout of their own; other kinds keep the cluster's", async () => {
    cluster = new Cluster({ clusterName: 'kind-timeout', logger: new RecordingLogger(), requestTimeout: '5s', drainTimeout: '2s' });
    cluster.registerKind(kind('brief', { requestTimeout: '50ms' }));
    cluster.registerKind(kind('plain', { grainClass: class PlainGrain extends SlowGrain {} }));
    await cluster.start();

    const byClient = await outcome(cluster.client<SlowGrain>('brief').get('a').wait(300));
    expect((byClient as { error: unknown }).error).toBeInstanceOf(GrainTimeoutError);
    expect((byClient as { error: GrainTimeoutError }).error.timeoutMs).toBe(50);
    const byName = await outcome(cluster.request('brief', 'b', 'wait', [300]));
    expect((byName as { error: GrainTimeoutError }).error.timeoutMs).toBe(50);

    // a call's own timeout wins; a kind without one waits as long as the cluster's requestTimeout
    expect(await cluster.client<SlowGrain>('brief').get('c', { timeout: '5s' }).wait(150)).toBe('done');
    expect(await cluster.request('brief', 'd', 'wait', [150], { timeout: '5s' })).toBe('done');
    expect(await cluster.client<SlowGrain>('plain').get('a').wait(150)).toBe('done');
  });

  it('applies to a reference taken before the kind was registered (a provider holding one from its constructor)', async () => {
    cluster = new Cluster({ clusterName: 'kind-timeout', logger: new RecordingLogger(), requestTimeout: '5s', drainTimeout: '2s' });
    const early = cluster.client<SlowGrain>('brief').get('early');
    cluster.registerKind(kind('brief', { requestTimeout: '50ms' }));
    await cluster.start();
    const result = await outcome(early.wait(300));
    expect((result as { error: GrainTimeoutError }).error).toBeInstanceOf(GrainTimeoutError);
    expect((result as { error: GrainTimeoutError }).error.timeoutMs).toBe(50);
  });

  it('is checked when the kind is registered: a bad duration, or one longer than members accept, names the class', () => {
    cluster = new Cluster({
      clusterName: 'kind-timeout',
      logger: new RecordingLogger(),
      requestTimeout: '500ms',
      remote: { inbound: { maxTimeoutMs: 1_000 } },
    });
    expect(() => cluster!.registerKind(kind('bad', { requestTimeout: 'soon' as never }))).toThrow(GrainConfigurationError);
    expect(() => cluster!.registerKind(kind('bad', { requestTimeout: 'soon' as never }))).toThrow(/SlowGrain requestTimeout: "soon" is not a duration/);
    expect(() => cluster!.registerKind(kind('bad', { requestTimeout: 0 }))).toThrow(/SlowGrain requestTimeout: 0 must be a positive/);
    expect(() => cluster!.registerKind(kind('long', { requestTimeout: '2s' }))).toThrow(
      /Grain class "SlowGrain": requestTimeout \(2000 ms\) is longer than members accept \(remote\.inbound\.maxTimeoutMs, 1000 ms\)/,
    );
    expect(() => cluster!.registerKind(kind('ok', { requestTimeout: '1s' }))).not.toThrow();
    // embedded (no remote): nothing remote to exceed
    const embedded = new Cluster({ clusterName: 'kind-timeout', logger: new RecordingLogger() });
    expect(() => embedded.registerKind(kind('long', { requestTimeout: '1h' }))).not.toThrow();
  });
});

describe("a kind's own placement", () => {
  it('is a built-in strategy by name, or the object given; anything else names the class', () => {
    const defaults = { idleTimeoutMs: 60_000, maxQueueLength: 10 };
    expect(new ClusterKind(kind('k', { placement: 'rendezvous' }), defaults).placement?.name).toBe('rendezvous');
    const own = new RecordingPlacement('own');
    expect(new ClusterKind(kind('k', { placement: own }), defaults).placement).toBe(own);
    expect(new ClusterKind(kind('k'), defaults).placement).toBeUndefined();
    expect(() => new ClusterKind(kind('k', { placement: 'nearest' as never }), defaults)).toThrow(GrainConfigurationError);
    expect(() => new ClusterKind(kind('k', { placement: 'nearest' as never }), defaults)).toThrow(
      /Grain class "SlowGrain" placement: "nearest" is not a placement/,
    );
  });

  it('reaches the identity lookup for the kinds hosted here (LookupMember.placementOf), and only for those', async () => {
    class Lookup extends InMemoryIdentityLookup {
      seen: LookupMember | undefined;
      override async setup(member: LookupMember): Promise<void> {
        this.seen = member;
        await super.setup(member);
      }
    }
    const lookup = new Lookup();
    const own = new RecordingPlacement('own');
    const cluster = new Cluster({ clusterName: 'kind-placement', logger: new RecordingLogger(), identityLookup: lookup });
    cluster.registerKind(kind('placed', { placement: own }));
    cluster.registerKind(kind('unplaced', { grainClass: class OtherGrain extends SlowGrain {} }));
    await cluster.start();
    try {
      expect(lookup.seen?.placementOf?.('placed')).toBe(own);
      expect(lookup.seen?.placementOf?.('unplaced')).toBeUndefined();
      expect(lookup.seen?.placementOf?.('hosted-elsewhere')).toBeUndefined();
    } finally {
      await cluster.shutdown();
    }
  });

  it("RedisIdentityLookup places by its placementByKind entry, else the kind's own, else its placement", async () => {
    const other: Member = { id: 'other', incarnation: 'other-1', address: 'other:1', kinds: ['account', 'order', 'audit'] };
    const self: Member = { id: 'self', incarnation: 'self-1', address: 'self:1', kinds: [] };
    const byKind = new RecordingPlacement('by-kind', other);
    const own = new RecordingPlacement('own', other);
    const fallback = new RecordingPlacement('fallback', other);
    const ownOf = new Map<string, PlacementStrategy>([
      ['account', own],
      ['order', own],
    ]);
    const claims = (placementOf: LookupMember['placementOf']) =>
      new RedisClaims({
        // NOTE: the strategy is asked before Redis is; this Redis never answers, so the call ends there.
        redis: { evalsha: () => Promise.reject(new Error('no Redis in this test')) } as unknown as Redis,
        keys: new RedisKeys('grains', 'placement'),
        member: {
          memberId: 'self',
          incarnation: 'self-1',
          self: () => self,
          members: () => [self, other],
          hostsKind: () => false,
          ...(placementOf !== undefined && { placementOf }),
        } as unknown as LookupMember,
        lease: { generation: 'g1' } as unknown as ClaimLease,
        placement: fallback,
        placementByKind: new Map([['account', byKind]]),
      });
    const asked = async (lookup: RedisClaims, kindName: string) => {
      const counts = [byKind.asked, own.asked, fallback.asked];
      await expect(lookup.get(kindName, 'x')).rejects.toBeInstanceOf(ClusterUnavailableError);
      return [byKind.asked - counts[0]!, own.asked - counts[1]!, fallback.asked - counts[2]!];
    };
    const withOwn = claims((name) => ownOf.get(name));
    expect(await asked(withOwn, 'account')).toEqual([1, 0, 0]); // the lookup's per-kind entry wins over the kind's own
    expect(await asked(withOwn, 'order')).toEqual([0, 1, 0]); // the kind's own
    expect(await asked(withOwn, 'audit')).toEqual([0, 0, 1]); // neither: the lookup's placement
    expect(await asked(claims(undefined), 'order')).toEqual([0, 0, 1]); // a member that knows no kind's own
  });
});
