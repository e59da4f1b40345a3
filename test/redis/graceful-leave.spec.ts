import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, FAST_LEASE, type GrainContext, type OnGrainActivate, type OnGrainDeactivate, RedisIdentityLookup, StaticProvider } from 'nestjs-grains';
import { eventually, outcome, RecordingLogger, sleep } from '../support/cluster.js';
import { freePort } from '../support/free-port.js';
import { type RedisHandle, startRedis } from '../support/redis-server.js';

/** What the grains write through to, shared by the members of this process (a stand-in for a database, fenced by epoch). */
const store = new Map<string, { n: number; epoch: number }>();
const deactivated: string[] = [];
/** Live activations per identity, across members: more than one at a time is a duplicate activation. */
const live = new Map<string, number>();
let duplicates = 0;

class TallyGrain implements OnGrainActivate, OnGrainDeactivate {
  private n = 0;
  constructor(readonly ctx: GrainContext) {}
  async onGrainActivate(): Promise<void> {
    const count = (live.get(this.ctx.identity) ?? 0) + 1;
    live.set(this.ctx.identity, count);
    if (count > 1) duplicates++;
    this.n = store.get(this.ctx.identity)?.n ?? 0;
  }
  async add(): Promise<{ n: number; member: string }> {
    await sleep(1); // a turn that takes a moment, so calls are in flight when the member leaves
    const stored = store.get(this.ctx.identity);
    if (stored !== undefined && stored.epoch > this.ctx.epoch) throw new Error('fenced: a newer activation wrote first');
    this.n++;
    store.set(this.ctx.identity, { n: this.n, epoch: this.ctx.epoch });
    return { n: this.n, member: this.ctx.memberId };
  }
  async onGrainDeactivate(): Promise<void> {
    live.set(this.ctx.identity, (live.get(this.ctx.identity) ?? 1) - 1);
    deactivated.push(`${this.ctx.memberId}:${this.ctx.identity}`);
  }
}

/**
 * Graceful leave: a member that shuts down stops new placements first, drains its grains
 * (hooks run, entries released) while serving the calls for them, and only then closes; the
 * calls in flight all get answers, none fails, and its grains answer from the others.
 */
describe('a member leaving gracefully under load', () => {
  let redis: RedisHandle;
  const clusters: Cluster[] = [];
  beforeAll(async () => {
    redis = await startRedis({ label: 'graceful-leave' });
  });
  afterAll(async () => {
    await redis.stop();
  });
  afterEach(async () => {
    await Promise.all(clusters.splice(0).map((c) => c.shutdown()));
  });

  it('loses no call, activates nothing twice, and moves its grains to the others', { timeout: 40_000 }, async () => {
    const ports = await Promise.all([freePort(), freePort(), freePort()]);
    const list = ports.map((p) => `127.0.0.1:${p}`);
    const member = (port: number | undefined) => {
      const cluster = new Cluster({
        clusterName: 'leave',
        logger: new RecordingLogger(),
        provider: new StaticProvider({ members: list, probeInterval: 20 }),
        identityLookup: new RedisIdentityLookup({ url: redis.url, lease: FAST_LEASE }),
        remote: port === undefined ? {} : { host: '127.0.0.1', port },
      });
      if (port !== undefined) cluster.registerKind({ name: 'tally', grainClass: TallyGrain, create: (ctx) => new TallyGrain(ctx) });
      clusters.push(cluster);
      return cluster;
    };
    const hosts = ports.map((p) => member(p));
    const gateway = member(undefined);
    await Promise.all(clusters.map((c) => c.start()));
    await Promise.all(clusters.map((c) => c.whenReady('10s')));
    const tallies = gateway.client<TallyGrain>('tally');
    const identities = Array.from({ length: 30 }, (_, i) => `t${i}`);

    // continuous load: each identity called in a loop, one call at a time
    const acknowledged = new Map<string, number>();
    const failures: unknown[] = [];
    const served = new Map<string, Set<string>>();
    let running = true;
    const loops = identities.map(async (id) => {
      while (running) {
        const result = await outcome(tallies.get(id, { timeout: 5_000 }).add());
        if (result.ok) {
          acknowledged.set(id, result.value.n);
          let members = served.get(id);
          if (members === undefined) served.set(id, (members = new Set()));
          members.add(result.value.member);
        } else failures.push(result.error);
      }
    });
    await eventually(() => identities.every((id) => (acknowledged.get(id) ?? 0) >= 3), 10_000);
    const leaving = hosts[0]!;
    const hostedThere = identities.filter((id) => served.get(id)?.has(leaving.memberId));
    expect(hostedThere.length).toBeGreaterThan(0);

    const before = new Map(acknowledged);
    const leftAt = leaving.shutdown();
    // calls made on the leaving member itself while it drains go to the others: none fails
    const ownCalls = await Promise.all(hostedThere.map((id) => outcome(leaving.client<TallyGrain>('tally').get(id, { timeout: 5_000 }).add())));
    await leftAt;
    clusters.splice(clusters.indexOf(leaving), 1);
    // every grain it hosted ran its deactivation hook there
    for (const id of hostedThere) expect(deactivated).toContain(`${leaving.memberId}:${id}`);
    // and answers again, from the others
    await eventually(() => identities.every((id) => (acknowledged.get(id) ?? 0) > (before.get(id) ?? 0) + 2), 10_000);
    running = false;
    await Promise.all(loops);

    expect(failures).toEqual([]);
    expect(ownCalls.filter((c) => !c.ok)).toEqual([]);
    expect(duplicates).toBe(0);
    for (const id of identities) expect(store.get(id)?.n).toBe(acknowledged.get(id)); // nothing acknowledged was lost
    const after = await Promise.all(hostedThere.map((id) => tallies.get(id).add()));
    for (const result of after) expect(result.member).not.toBe(leaving.memberId);
  });

  it('places nothing new on itself while it drains, and leaves no claim behind', { timeout: 30_000 }, async () => {
    const ports = await Promise.all([freePort(), freePort()]);
    const list = ports.map((p) => `127.0.0.1:${p}`);
    const [a, b] = ports.map((port) => {
      const cluster = new Cluster({
        clusterName: 'leave-claims',
        logger: new RecordingLogger(),
        provider: new StaticProvider({ members: list, probeInterval: 20 }),
        // prefer-local: a member places new grains on itself when it may
        identityLookup: new RedisIdentityLookup({ url: redis.url, lease: FAST_LEASE, placement: 'prefer-local' }),
        remote: { host: '127.0.0.1', port },
      });
      cluster.registerKind({ name: 'slow', grainClass: SlowToLeaveGrain, create: (ctx) => new SlowToLeaveGrain(ctx) });
      clusters.push(cluster);
      return cluster;
    }) as [Cluster, Cluster];
    await Promise.all([a.start(), b.start()]);
    await Promise.all([a.whenReady('10s'), b.whenReady('10s')]);
    expect(await a.client<SlowToLeaveGrain>('slow').get('busy').where()).toBe(a.memberId); // a grain on A, slow to deactivate

    const leftAt = a.shutdown();
    await sleep(100); // A is draining 'busy' (its hook takes 1.5 s)
    // a new grain asked of A goes to B, and so does one asked of B (never to the leaving member)
    expect(await a.client<SlowToLeaveGrain>('slow').get('fresh-a', { timeout: 5_000 }).where()).toBe(b.memberId);
    expect(await b.client<SlowToLeaveGrain>('slow').get('fresh-b', { timeout: 5_000 }).where()).toBe(b.memberId);
    // the draining grain answers from B once A released it
    expect(await b.client<SlowToLeaveGrain>('slow').get('busy', { timeout: 5_000 }).where()).toBe(b.memberId);
    await leftAt;
    clusters.splice(clusters.indexOf(a), 1);
    // A left no entry behind: every entry names B
    const keys = (await redis.command('KEYS', '*leave-claims*:ci:*')) as string[];
    for (const key of keys) expect(String(await redis.command('HGET', key, 'member'))).toBe(b.memberId);
  });
});

class SlowToLeaveGrain implements OnGrainDeactivate {
  constructor(readonly ctx: GrainContext) {}
  where(): string {
    return this.ctx.memberId;
  }
  async onGrainDeactivate(): Promise<void> {
    await sleep(1_500);
  }
}
