import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  Cluster,
  type ClusterOptions,
  ClusterUnavailableError,
  FAST_LEASE,
  GrainConfigurationError,
  type GrainContext,
  RedisIdentityLookup,
  type RedisIdentityLookupOptions,
  StaticProvider,
} from 'nestjs-grains';
import { eventually, outcome, RecordingLogger, sleep } from '../support/cluster.js';
import { freePort } from '../support/free-port.js';
import { type RedisHandle, startRedis } from '../support/redis-server.js';

/** The generation key of the tests' cluster. */
const GENERATION_KEY = '{grains:rl}:gen';

class CounterGrain {
  static constructed = 0;
  private n = 0;
  /** When this activation was constructed (ms since 1970: the host's clock, which Redis' TIME also reads). */
  private readonly born = Date.now();
  constructor(readonly ctx: GrainContext) {
    CounterGrain.constructed++;
  }
  add(): { n: number; epoch: number; activation: string; member: string; born: number } {
    return { n: ++this.n, epoch: this.ctx.epoch, activation: this.ctx.activationId, member: this.ctx.memberId, born: this.born };
  }
  leave(): void {
    this.ctx.deactivate();
  }
}

interface Member {
  cluster: Cluster;
  logger: RecordingLogger;
  lookup: RedisIdentityLookup;
}

async function startMembers(
  redis: RedisHandle,
  count: number,
  extra: { lookup?: RedisIdentityLookupOptions; cluster?: Partial<ClusterOptions> } = {},
): Promise<Member[]> {
  const ports = await Promise.all(Array.from({ length: count }, () => freePort()));
  const list = ports.map((p) => `127.0.0.1:${p}`);
  const members = ports.map((port) => {
    const logger = new RecordingLogger();
    const lookup = new RedisIdentityLookup({ url: redis.url, ...extra.lookup });
    const cluster = new Cluster({
      clusterName: 'rl',
      logger,
      identityLookup: lookup,
      provider: new StaticProvider({ members: list, probeIntervalMs: 20 }),
      remote: { host: '127.0.0.1', port },
      ...extra.cluster,
    });
    cluster.registerKind({ name: 'counter', grainClass: CounterGrain, create: (ctx) => new CounterGrain(ctx) });
    return { cluster, logger, lookup };
  });
  await Promise.all(members.map((m) => m.cluster.start()));
  await eventually(() => members.every((m) => m.cluster.members().length === count), 5_000);
  return members;
}

/** When the generation now in Redis began (ms since 1970), read from the key. */
async function generationStart(redis: RedisHandle): Promise<number> {
  return Number(String(await redis.command('GET', GENERATION_KEY)).split(':')[1]);
}

/** Call until the call succeeds or `withinMs` passed (then its last error is thrown). */
async function eventuallyOk<T>(call: () => Promise<T>, withinMs: number): Promise<T> {
  const until = Date.now() + withinMs;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (Date.now() > until) throw error;
      await sleep(100);
    }
  }
}

/** Calls of `command` (lower case) since the server started, from INFO commandstats. */
async function commandCalls(redis: RedisHandle, command: string): Promise<number> {
  const stats = String(await redis.command('INFO', 'commandstats'));
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
}

/** Script runs (EVALSHA, and EVAL after a NOSCRIPT). */
async function scriptRuns(redis: RedisHandle): Promise<number> {
  return (await commandCalls(redis, 'evalsha')) + (await commandCalls(redis, 'eval'));
}

/** Redis' count of connected clients (the connection that asks included). */
async function connectedClients(redis: RedisHandle): Promise<number> {
  return Number((await redis.info('clients'))['connected_clients']);
}

describe('RedisIdentityLookup (real redis-server)', () => {
  let redis: RedisHandle;
  let members: Member[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  afterEach(async () => {
    await Promise.all(members.map((m) => m.cluster.shutdown()));
    members = [];
    await redis.flushAll();
  });

  it('claims first: one entry per identity with member, incarnation, activation and epoch', async () => {
    members = await startMembers(redis, 1);
    const [m] = members;
    const result = await m!.cluster.client<CounterGrain>('counter').get('c1').add();
    const entry = await redis.command('HGETALL', '{grains:rl}:ci:counter/c1');
    const fields = Object.fromEntries(
      (entry as string[]).reduce<string[][]>((acc, v, i) => (i % 2 === 0 ? [...acc, [v]] : (acc[acc.length - 1]!.push(v), acc)), []),
    );
    expect(fields).toMatchObject({
      member: m!.cluster.memberId,
      incarnation: m!.cluster.incarnation,
      activation: result.activation,
      epoch: String(result.epoch),
    });
    expect(await redis.command('PTTL', '{grains:rl}:ci:counter/c1')).toBe(-1); // never a TTL on a live entry
    expect(Number(await redis.command('PTTL', `{grains:rl}:lease:${m!.cluster.incarnation}`))).toBeGreaterThan(0);
  });

  it('keeps the epoch growing across passivation, and releases the entry by compare-and-delete', async () => {
    members = await startMembers(redis, 1);
    const counters = members[0]!.cluster.client<CounterGrain>('counter');
    const first = await counters.get('p').add();
    await counters.get('p').leave();
    await eventually(() => members[0]!.cluster.stats().activations === 0);
    let released = false;
    for (let i = 0; i < 50 && !released; i++) {
      released = (await redis.command('HGET', '{grains:rl}:ci:counter/p', 'incarnation')) === null;
      if (!released) await sleep(10);
    }
    expect(released).toBe(true); // the release script ran after onGrainDeactivate
    expect(await redis.command('HGET', '{grains:rl}:ci:counter/p', 'epoch')).toBe(String(first.epoch)); // the counter stays
    const second = await counters.get('p').add();
    expect(second.epoch).toBe(first.epoch + 1);
    expect(second.activation).not.toBe(first.activation);
  });

  it('holds calls that arrive while a deactivated grain is released, so they get a new claim, never the old one', async () => {
    members = await startMembers(redis, 1);
    const counters = members[0]!.cluster.client<CounterGrain>('counter');
    const first = await counters.get('h').add();
    // leave() deactivates after its turn; the calls right behind it arrive during the release.
    const [, ...after] = await Promise.all([counters.get('h').leave(), counters.get('h').add(), counters.get('h').add()]);
    const fresh = after.find((r) => r.activation !== first.activation);
    expect(fresh).toBeDefined();
    expect(fresh!.epoch).toBeGreaterThan(first.epoch);
    const entryEpoch = await redis.command('HGET', '{grains:rl}:ci:counter/h', 'epoch');
    expect(Number(entryEpoch)).toBe(fresh!.epoch);
    expect(await redis.command('HGET', '{grains:rl}:ci:counter/h', 'activation')).toBe(fresh!.activation);
  });

  it('places new activations on random members when asked, still once each', async () => {
    members = await startMembers(redis, 2, { lookup: { placement: 'random' } });
    const ids = Array.from({ length: 60 }, (_, i) => `rnd-${i}`);
    const results = await Promise.all(ids.map((id) => members[0]!.cluster.client<CounterGrain>('counter').get(id).add()));
    const hosts = new Set(results.map((r) => r.member));
    expect(hosts.size).toBe(2);
    const again = await Promise.all(ids.map((id) => members[1]!.cluster.client<CounterGrain>('counter').get(id).add()));
    expect(again.map((r) => r.activation)).toEqual(results.map((r) => r.activation));
  });

  it('activates a grain once when 200 callers on 3 members race for it', async () => {
    members = await startMembers(redis, 3);
    CounterGrain.constructed = 0;
    const identities = Array.from({ length: 20 }, (_, i) => `race-${i}`);
    const results = await Promise.all(
      identities.flatMap((id) =>
        Array.from({ length: 200 }, (_, i) =>
          members[i % 3]!.cluster.client<CounterGrain>('counter')
            .get(id)
            .add()
            .then((r) => ({ id, ...r })),
        ),
      ),
    );
    for (const id of identities) {
      const mine = results.filter((r) => r.id === id);
      expect(new Set(mine.map((r) => r.activation)).size).toBe(1);
      expect(mine.map((r) => r.n).sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    }
    expect(CounterGrain.constructed).toBe(identities.length);
    expect(members.reduce((n, m) => n + m.cluster.stats().fenced, 0)).toBe(0);
  });

  it("sends the claims of one turn as one script run, each identity decided on its own: claimed here, or another member's", async () => {
    members = await startMembers(redis, 2);
    const [a, b] = members;
    // member a holds owned-0 … owned-19; then member b asks for those and for 280 new identities at once
    const owned = Array.from({ length: 20 }, (_, i) => `owned-${i}`);
    const onA = await Promise.all(owned.map((id) => a!.cluster.client<CounterGrain>('counter').get(id).add()));
    expect(new Set(onA.map((r) => r.member))).toEqual(new Set([a!.cluster.memberId]));
    const fresh = Array.from({ length: 280 }, (_, i) => `fresh-${i}`);
    const scriptsBefore = await scriptRuns(redis);
    const claimsBefore = await commandCalls(redis, 'hset');
    CounterGrain.constructed = 0;
    const results = await Promise.all([...owned, ...fresh].map((id) => b!.cluster.client<CounterGrain>('counter').get(id).add()));
    const scripts = (await scriptRuns(redis)) - scriptsBefore;
    // one claim script run per turn of 256 at most (the b member's call path also resolves nothing: prefer-local claims)
    expect(scripts).toBeGreaterThanOrEqual(2);
    expect(scripts).toBeLessThanOrEqual(6);
    expect((await commandCalls(redis, 'hset')) - claimsBefore).toBe(fresh.length); // one claim per new identity, none for owned ones
    expect(CounterGrain.constructed).toBe(fresh.length);
    expect(results.slice(0, owned.length).map((r) => [r.member, r.n])).toEqual(owned.map(() => [a!.cluster.memberId, 2]));
    expect(new Set(results.slice(owned.length).map((r) => r.member))).toEqual(new Set([b!.cluster.memberId]));
    expect(new Set(results.slice(owned.length).map((r) => r.activation)).size).toBe(fresh.length);
  });

  it('fails alone an identity whose entry is not one (not a hash, an epoch not a whole number); the others of its batch are claimed', async () => {
    members = await startMembers(redis, 1);
    const counters = members[0]!.cluster.client<CounterGrain>('counter');
    await redis.command('SET', '{grains:rl}:ci:counter/not-a-hash', 'oops');
    await redis.command('HSET', '{grains:rl}:ci:counter/bad-epoch', 'epoch', '1.5');
    const results = await Promise.all(['not-a-hash', 'bad-epoch', 'fine-0', 'fine-1', 'fine-2'].map((id) => outcome(counters.get(id).add())));
    expect(results.slice(0, 2).map((r) => (r.ok ? 'ok' : (r.error as Error).message))).toEqual([
      expect.stringMatching(/could not claim counter\/not-a-hash: the entry of counter\/not-a-hash is a string, not a hash/),
      expect.stringMatching(/could not claim counter\/bad-epoch: .*epoch that is not a whole number/),
    ]);
    expect(results.slice(2).map((r) => r.ok)).toEqual([true, true, true]);
    expect(await redis.command('GET', '{grains:rl}:ci:counter/not-a-hash')).toBe('oops'); // nothing written for them
    expect(await redis.command('HGET', '{grains:rl}:ci:counter/bad-epoch', 'incarnation')).toBe(null);
  });

  it("refuses a whole batch, writing nothing, when the incarnation's set of entries is not a set (its one SADD comes last)", async () => {
    members = await startMembers(redis, 1);
    const cluster = members[0]!.cluster;
    const counters = cluster.client<CounterGrain>('counter');
    await counters.get('before').add();
    const set = `{grains:rl}:acts:${cluster.incarnation}`;
    await redis.command('DEL', set);
    await redis.command('SET', set, 'oops');
    const results = await Promise.all(['w-0', 'w-1', 'w-2'].map((id) => outcome(counters.get(id).add())));
    expect(results.map((r) => (r.ok ? 'ok' : (r.error as Error).message))).toEqual(
      Array.from({ length: 3 }, () => expect.stringMatching(/acts:.* is a string, not a set/)),
    );
    for (const id of ['w-0', 'w-1', 'w-2']) expect(await redis.command('EXISTS', `{grains:rl}:ci:counter/${id}`)).toBe(0);
    await redis.command('DEL', set);
    expect((await outcome(counters.get('w-0').add())).ok).toBe(true); // the next batch claims again
    expect(await redis.command('SISMEMBER', set, 'counter/w-0')).toBe(1);
  });

  it('removes the entries of an incarnation whose lease lapsed, in batches, and leaves live ones alone', async () => {
    members = await startMembers(redis, 1);
    const lapsed = 'lapsed-incarnation';
    await redis.command('SADD', '{grains:rl}:incarnations', lapsed);
    for (let i = 0; i < 250; i++) {
      await redis.command(
        'HSET',
        `{grains:rl}:ci:counter/old-${i}`,
        'member',
        'gone',
        'incarnation',
        lapsed,
        'address',
        '',
        'activation',
        `a${i}`,
        'epoch',
        '3',
      );
      await redis.command('SADD', `{grains:rl}:acts:${lapsed}`, `counter/old-${i}`);
    }
    const live = await members[0]!.cluster.client<CounterGrain>('counter').get('alive').add();
    await members[0]!.lookup.cleanupLapsed();
    expect(await redis.command('EXISTS', `{grains:rl}:acts:${lapsed}`)).toBe(0);
    expect(await redis.command('SISMEMBER', '{grains:rl}:incarnations', lapsed)).toBe(0); // done with it
    expect(await redis.command('SISMEMBER', '{grains:rl}:incarnations', members[0]!.cluster.incarnation)).toBe(1);
    expect(await redis.command('HGET', '{grains:rl}:ci:counter/old-7', 'incarnation')).toBe(null);
    expect(await redis.command('HGET', '{grains:rl}:ci:counter/old-7', 'epoch')).toBe('3'); // the epoch survives
    expect(await redis.command('HGET', '{grains:rl}:ci:counter/alive', 'activation')).toBe(live.activation);
  });

  it('refuses to start unless maxmemory-policy is noeviction', async () => {
    await redis.configSet('maxmemory-policy', 'allkeys-lru');
    try {
      const cluster = new Cluster({ clusterName: 'rl', identityLookup: new RedisIdentityLookup({ url: redis.url }), logger: new RecordingLogger() });
      await expect(cluster.start()).rejects.toThrow(GrainConfigurationError);
      await expect(cluster.start()).resolves.toBeUndefined();
      await cluster.shutdown();
    } finally {
      await redis.configSet('maxmemory-policy', 'noeviction');
    }
  });

  it('warns, and runs, when CONFIG is disabled so the eviction policy cannot be checked', async () => {
    const locked = await startRedis({ disableConfig: true });
    try {
      const logger = new RecordingLogger();
      const cluster = new Cluster({ clusterName: 'rl', identityLookup: new RedisIdentityLookup({ url: locked.url }), logger });
      await cluster.start();
      expect(logger.messages('warn').join('\n')).toContain('could not read maxmemory-policy');
      await cluster.shutdown();
    } finally {
      await locked.stop();
    }
  });

  it('fails calls that need a lookup with ClusterUnavailableError while Redis is down, serves active grains meanwhile, and recovers', async () => {
    members = await startMembers(redis, 1, { lookup: { lease: 'safe', commandTimeoutMs: 300 } });
    const counters = members[0]!.cluster.client<CounterGrain>('counter');
    await counters.get('warm').add();
    await redis.pause();
    try {
      const started = Date.now();
      const cold = (await outcome(counters.get('cold', { timeout: 2_000 }).add())) as { error: unknown };
      expect(cold.error).toBeInstanceOf(ClusterUnavailableError);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect((await counters.get('warm').add()).n).toBe(2); // within its lease
    } finally {
      await redis.resume();
    }
    expect((await counters.get('cold').add()).n).toBe(1);
  });

  it('drops every activation when Redis loses its data, and claims again only after a lease period', async () => {
    members = await startMembers(redis, 1);
    const counters = members[0]!.cluster.client<CounterGrain>('counter');
    const before = await counters.get('g').add();
    await redis.restart(); // no persistence: everything, the generation key included, is gone
    // The renewer notices (its script answers GEN) and the member drops what it held.
    expect(await eventually(() => members[0]!.cluster.stats().fenced === 1, 3_000)).toBe(true);
    const noticed = Date.now();
    const after = await counters.get('g', { timeout: 8_000 }).add();
    expect(Date.now() - noticed).toBeGreaterThanOrEqual(1_300); // nobody claims for a (fast) lease period
    expect(after.activation).not.toBe(before.activation);
    expect(after.n).toBe(1);
    expect(after.epoch).toBeGreaterThan(before.epoch); // the fencing token keeps growing across the data loss
    expect(members[0]!.logger.messages('warn').join('\n')).toMatch(/generation/);
    await sleep(10);
  });
  it('waits a lease, timed by Redis, before claiming in a generation it did not see begin', async () => {
    const [holder] = await startMembers(redis, 1);
    members = [holder!];
    await holder!.cluster.client<CounterGrain>('counter').get('x').add();
    // Redis loses its data; the holder's lease still looks valid to it until its next renewal.
    await redis.flushAll();
    // A member starts right then: its FIRST join is into the generation that begins now.
    const [newcomer] = await startMembers(redis, 1);
    members.push(newcomer!);
    const served = await newcomer!.cluster.client<CounterGrain>('counter').get('x', { timeout: 8_000 }).add();
    expect(served.member).toBe(newcomer!.cluster.memberId);
    // Its activation was created no sooner than the generation's start plus a lease, by Redis' clock.
    expect(served.born - (await generationStart(redis))).toBeGreaterThanOrEqual(FAST_LEASE.leaseMs);
  });

  it('rejoins by itself after a release fails, and claims again', async () => {
    members = await startMembers(redis, 1, { lookup: { commandTimeout: 300 } });
    const m = members[0]!;
    const counters = m.cluster.client<CounterGrain>('counter');
    const first = await counters.get('r').add();
    const incarnation = m.cluster.incarnation;
    await redis.pause();
    try {
      await counters.get('r').leave(); // served here, within the lease; its release then times out
      expect(await eventually(() => m.cluster.incarnation !== incarnation, 2_000), 'the failed release fenced the member').toBe(true);
    } finally {
      await redis.resume();
    }
    const fresh = await eventuallyOk(() => counters.get('fresh', { timeout: 1_000 }).add(), 6_000);
    expect(fresh.n).toBe(1);
    const back = await eventuallyOk(() => counters.get('r', { timeout: 1_000 }).add(), 6_000);
    expect(back.activation).not.toBe(first.activation);
    expect(back.epoch).toBeGreaterThan(first.epoch);
  });

  it('never re-issues an epoch: a claim takes the larger of the stored epoch and the generation start, plus one', async () => {
    members = await startMembers(redis, 1);
    const counters = members[0]!.cluster.client<CounterGrain>('counter');
    await counters.get('warm').add();
    // An entry whose epoch is below the generation's floor (an old primary may have issued 6 already).
    await redis.command('HSET', '{grains:rl}:ci:counter/e5', 'epoch', '5');
    const claimed = await counters.get('e5').add();
    expect(claimed.epoch).toBe((await generationStart(redis)) + 1);
  });

  it('gives an entry that survived into a new generation (restart with data) an epoch above that generation start', async () => {
    members = await startMembers(redis, 1);
    const counters = members[0]!.cluster.client<CounterGrain>('counter');
    const before = await counters.get('kept').add();
    const oldStart = await generationStart(redis);
    await sleep(50); // the new generation starts at a later millisecond
    await redis.restart({ keepData: true }); // keys survive, the run_id is new: another generation
    expect(await eventually(() => members[0]!.cluster.stats().fenced === 1, 3_000), 'the member dropped what it held').toBe(true);
    const after = await eventuallyOk(() => counters.get('kept', { timeout: 2_000 }).add(), 10_000);
    const newStart = await generationStart(redis);
    expect(newStart).toBeGreaterThan(oldStart);
    expect(after.activation).not.toBe(before.activation);
    expect(after.epoch).toBeGreaterThan(newStart);
  });

  it('closes its Redis connection when it refuses to start over the eviction policy', async () => {
    await redis.configSet('maxmemory-policy', 'allkeys-lru');
    try {
      // NOTE: connections of earlier steps (the CONFIG SET above, earlier tests) may still be
      // closing: count once the number has settled, and then require no more after the start.
      let before = await connectedClients(redis);
      for (let i = 0; i < 20; i++) {
        await sleep(50);
        const again = await connectedClients(redis);
        if (again === before) break;
        before = again;
      }
      const cluster = new Cluster({ clusterName: 'rl', identityLookup: new RedisIdentityLookup({ url: redis.url }), logger: new RecordingLogger() });
      await expect(cluster.start()).rejects.toThrow(GrainConfigurationError);
      let after = await connectedClients(redis);
      for (let i = 0; i < 20 && after > before; i++) {
        await sleep(50);
        after = await connectedClients(redis);
      }
      expect(after, 'connections left open by the refused start').toBeLessThanOrEqual(before);
    } finally {
      await redis.configSet('maxmemory-policy', 'noeviction');
    }
  });
});
