/**
 * Gossip between member processes (real gRPC): a user key reaches every member within a
 * bound while members join, leave, are killed and paused; a silent or disconnected member is
 * suspected (no new placements, cached routes dropped, its Redis entries untouched) and used
 * again once it resumes or rejoins; topology consensus while members join and after;
 * least-loaded placement follows the gossiped load.
 */
import { join } from 'node:path';
import type { GossipMemberStatus, TopologyConsensus } from 'nestjs-grains';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemberHarness, type MemberProcess, ROOT } from '../support/member-harness.js';
import { ConsulTestAgent } from '../support/consul-agent.js';
import { type RedisHandle, redisCommand, startRedis } from '../support/redis-server.js';

const REDIS_MEMBER_SCRIPT = join(ROOT, 'dist', 'test', 'support', 'members', 'redis-member.js');
/** A key set on one member is seen on every live member within this (a few gossip rounds; generous for a loaded machine). */
const SPREAD_BOUND_MS = 5_000;
/** Fast gossip timings for these tests: suspicion within about 1.5 s of silence. */
const GOSSIP_ENV = { GOSSIP_INTERVAL_MS: '100', HEARTBEAT_INTERVAL_MS: '300', SUSPECT_AFTER_MS: '1500' };

interface GossipView {
  members: GossipMemberStatus[];
  consensus: TopologyConsensus;
  values?: Record<string, unknown>;
}

async function view(member: MemberProcess, key?: string): Promise<GossipView> {
  const result = await member.request({ cmd: 'gossip', ...(key !== undefined && { key }) });
  return result['value'] as GossipView;
}

async function set(member: MemberProcess, key: string, value: unknown): Promise<void> {
  const result = await member.request({ cmd: 'gossipSet', key, value });
  expect(result['ok'], JSON.stringify(result['error'])).toBe(true);
}

/** Poll `check` on every member in `members` until it holds on all (true), or `timeoutMs` passes (false, and the views logged). */
async function untilAll(members: MemberProcess[], check: (v: GossipView, m: MemberProcess) => boolean, timeoutMs: number, key?: string): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const views = await Promise.all(members.map((m) => view(m, key)));
    if (views.every((v, i) => check(v, members[i]!))) return true;
    if (Date.now() > deadline) {
      console.log(`views at the deadline:\n${views.map((v, i) => `${members[i]!.label}: ${JSON.stringify(v)}`).join('\n')}`);
      return false;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

const statusOf = (v: GossipView, address: string) => v.members.find((m) => m.address === address)?.status;

describe('gossip between member processes', () => {
  let h: MemberHarness | undefined;
  afterEach(async () => {
    await h?.shutdown();
    h = undefined;
  }, 30_000);

  it('spreads keys to every member through joins, a graceful leave, a SIGKILL and a SIGSTOP, with topology consensus', async () => {
    h = await MemberHarness.start(4, { env: GOSSIP_ENV });
    const [m0, m1, m2, m3] = h.members as [MemberProcess, MemberProcess, MemberProcess, MemberProcess];
    const all = () => h!.members.filter((m) => m.alive);

    // Consensus once all four have gossiped the same member set; every member alive.
    expect(await untilAll(all(), (v) => v.consensus.consensus && v.members.length === 4, SPREAD_BOUND_MS)).toBe(true);
    expect(await untilAll(all(), (v) => v.members.every((s) => s.status === 'alive' && s.heartbeatAgeMs !== undefined), SPREAD_BOUND_MS)).toBe(true);

    // A key reaches everyone within the bound.
    const started = Date.now();
    await set(m0, 'build', { version: 7 });
    expect(await untilAll(all(), (v) => JSON.stringify(v.values?.[m0.address]) === '{"version":7}', SPREAD_BOUND_MS, 'build')).toBe(true);
    const spreadMs = Date.now() - started;
    expect(spreadMs).toBeLessThan(SPREAD_BOUND_MS);

    // Graceful leave: the others see it leaving (a static list keeps listing its address), never suspected.
    await h.kill(3, 'SIGTERM');
    const three = [m0, m1, m2];
    expect(await untilAll(three, (v) => statusOf(v, m3.address) === 'leaving', SPREAD_BOUND_MS)).toBe(true);
    // Gone quiet after leaving (past SUSPECT_AFTER_MS): leaving, not suspected; no one logged it as a failure.
    await new Promise((r) => setTimeout(r, 2_000));
    for (const v of await Promise.all(three.map((m) => view(m)))) expect(statusOf(v, m3.address)).toBe('leaving');
    for (const m of three) expect(m.stderr()).not.toContain(`member ${m3.address} (${m3.address}) is suspected`);

    // A key set while it was away reaches the member when it comes back (a new incarnation), and it is alive again.
    await set(m1, 'epoch', 2);
    const m3b = await h.restart(3);
    expect(await untilAll([m3b], (v) => v.values?.[m1.address] === 2, SPREAD_BOUND_MS, 'epoch')).toBe(true);
    expect(await untilAll([m3b], (v) => JSON.stringify(v.values?.[m0.address]) === '{"version":7}', SPREAD_BOUND_MS, 'build')).toBe(true);
    expect(await untilAll(all(), (v) => v.members.every((s) => s.status === 'alive') && v.consensus.consensus, SPREAD_BOUND_MS * 2)).toBe(true);

    // SIGKILL: suspected by the others (its connections drop); keys still spread among the living.
    await h.kill(2, 'SIGKILL');
    const living = [m0, m1, m3b];
    expect(await untilAll(living, (v) => statusOf(v, m2.address) === 'suspected', SPREAD_BOUND_MS)).toBe(true);
    await set(m3b, 'after-kill', true);
    expect(await untilAll(living, (v) => v.values?.[m3b.address] === true, SPREAD_BOUND_MS, 'after-kill')).toBe(true);

    // SIGSTOP: its heartbeat stops, so it is suspected; resumed, it is alive again and catches up.
    h.stop(1);
    const awake = [m0, m3b];
    expect(await untilAll(awake, (v) => statusOf(v, m1.address) === 'suspected', SPREAD_BOUND_MS)).toBe(true);
    await set(m0, 'during-pause', 'x');
    expect(await untilAll([m3b], (v) => v.values?.[m0.address] === 'x', SPREAD_BOUND_MS, 'during-pause')).toBe(true);
    h.cont(1);
    expect(await untilAll(awake, (v) => statusOf(v, m1.address) === 'alive', SPREAD_BOUND_MS)).toBe(true);
    expect(await untilAll([m1], (v) => v.values?.[m0.address] === 'x', SPREAD_BOUND_MS, 'during-pause')).toBe(true);

    // The killed member rejoins as a new incarnation: used again, consensus again.
    const m2b = await h.restart(2);
    expect(await untilAll(all(), (v) => v.members.every((s) => s.status === 'alive') && v.consensus.consensus, SPREAD_BOUND_MS * 2)).toBe(true);
    expect(await untilAll([m2b], (v) => v.values?.[m3b.address] === true, SPREAD_BOUND_MS, 'after-kill')).toBe(true);
  }, 90_000);
});

describe('gossip with the Redis lookup', () => {
  let h: MemberHarness | undefined;
  let joiner: MemberHarness | undefined;
  let redis: RedisHandle;
  beforeEach(async () => {
    redis = await startRedis({ label: 'gossip' });
  });
  afterEach(async () => {
    await joiner?.shutdown(1_500);
    await h?.shutdown(1_500);
    h = joiner = undefined;
    await redis.stop();
  }, 30_000);

  it('reports topology consensus only once every member Consul lists has gossiped the same member set', async () => {
    const agent = await ConsulTestAgent.start({ minDeregisterCriticalAfter: 1_000, reapInterval: 250 });
    try {
      const clusterName = `consensus-${process.pid}`;
      const env = {
        ...GOSSIP_ENV,
        REDIS_URL: redis.url,
        CONSUL_URL: agent.url,
        CONSUL_DEREGISTER_CRITICAL_AFTER: '1s',
        STATIC_MEMBERS: undefined,
        EXPECT_MEMBERS: '3',
      };
      h = await MemberHarness.start(
        Array.from({ length: 3 }, (_, i) => ({ script: REDIS_MEMBER_SCRIPT, label: `m${i}` })),
        { clusterName, env },
      );
      expect(await untilAll(h.members, (v) => v.members.length === 3 && v.consensus.consensus, SPREAD_BOUND_MS)).toBe(true);
      await set(h.members[0]!, 'greeting', 'hello');

      // A member that does not gossip joins: listed by everyone, its view never heard: no consensus, for as long as it stays.
      joiner = await MemberHarness.start([{ script: REDIS_MEMBER_SCRIPT, label: 'quiet', env: { GOSSIP: 'off' } }], {
        clusterName,
        env: { ...env, EXPECT_MEMBERS: '4' },
      });
      const quiet = joiner.members[0]!;
      expect(await untilAll(h.members, (v) => v.members.length === 4, SPREAD_BOUND_MS)).toBe(true);
      await new Promise((r) => setTimeout(r, 1_000));
      for (const v of await Promise.all(h.members.map((m) => view(m)))) {
        expect(v.consensus.consensus).toBe(false);
        expect(v.consensus.members.find((m) => m.id === quiet.address)).toEqual({ id: quiet.address });
        // Not gossiping is not silence: it was never heard, so it is not suspected.
        expect(statusOf(v, quiet.address)).toBe('alive');
      }
      await joiner.shutdown(3_000);

      // Gone from Consul: the three agree again.
      expect(await untilAll(h.members, (v) => v.members.length === 3 && v.consensus.consensus, SPREAD_BOUND_MS * 2)).toBe(true);

      // A gossiping member joins: consensus once it has gossiped, and it has every key.
      joiner = await MemberHarness.start([{ script: REDIS_MEMBER_SCRIPT, label: 'newcomer' }], { clusterName, env: { ...env, EXPECT_MEMBERS: '4' } });
      const all = [...h.members, joiner.members[0]!];
      expect(await untilAll(all, (v) => v.members.length === 4 && v.consensus.consensus, SPREAD_BOUND_MS)).toBe(true);
      expect(await untilAll([joiner.members[0]!], (v) => v.values?.[h!.members[0]!.address] === 'hello', SPREAD_BOUND_MS, 'greeting')).toBe(true);
    } finally {
      await joiner?.shutdown(1_500);
      await h?.shutdown(1_500);
      joiner = h = undefined;
      await agent.stop();
    }
  }, 90_000);

  async function append(
    from: MemberProcess,
    identities: string[],
    timeoutMs = 4_000,
  ): Promise<Array<{ ok: boolean; value?: { member: string }; error?: unknown }>> {
    const result = await from.request(
      { cmd: 'ops', ops: identities.map((identity) => ({ op: 'append', identity, element: 'e', timeoutMs })) },
      timeoutMs + 5_000,
    );
    return result['value'] as never;
  }

  it('drops routes to a paused member and places nothing new on it, never deletes its entries, and uses it again once it resumes', async () => {
    const clusterName = `gossip-${process.pid}`;
    h = await MemberHarness.start(
      Array.from({ length: 3 }, (_, i) => ({ script: REDIS_MEMBER_SCRIPT, label: `m${i}`, env: { REDIS_URL: redis.url } })),
      // NOTE: the safe lease (5 s) outlives suspicion (1.5 s): the paused member's entries stay valid meanwhile.
      { clusterName, env: { ...GOSSIP_ENV, LEASE: 'safe', PLACEMENT: 'random', PROBE_INTERVAL_MS: '50' } },
    );
    const [m0, m1, victim] = h.members as [MemberProcess, MemberProcess, MemberProcess];
    expect(await untilAll(h.members, (v) => v.members.every((s) => s.heartbeatAgeMs !== undefined), SPREAD_BOUND_MS)).toBe(true);

    // Grains on every member, called from m0 so it caches routes to the victim's.
    const first = await append(
      m0,
      Array.from({ length: 30 }, (_, i) => `a${i}`),
    );
    expect(first.every((r) => r.ok)).toBe(true);
    const onVictim = first.flatMap((r, i) => (r.value!.member === victim.address ? [`a${i}`] : []));
    expect(onVictim.length).toBeGreaterThan(0);
    const cachedBefore = ((await m0.stats()).stats as unknown as { pidCache: { size: number } }).pidCache.size;
    expect(cachedBefore).toBeGreaterThanOrEqual(onVictim.length);

    const entryKey = (identity: string) => `{grains:${clusterName}}:ci:list/${identity}`;
    h.stop(2);
    const pausedAt = Date.now();
    expect(await untilAll([m0, m1], (v) => statusOf(v, victim.address) === 'suspected', 3_000)).toBe(true);
    // Routes to it are gone from m0's cache.
    const cachedAfter = ((await m0.stats()).stats as unknown as { pidCache: { size: number } }).pidCache.size;
    expect(cachedAfter).toBeLessThanOrEqual(cachedBefore - onVictim.length);
    // New grains go to the two others only (random placement would put a third on the victim, and they would time out).
    const during = await append(
      m0,
      Array.from({ length: 24 }, (_, i) => `b${i}`),
      2_000,
    );
    expect(during.map((r) => r.ok)).toEqual(during.map(() => true));
    expect(during.every((r) => r.value!.member !== victim.address)).toBe(true);
    // Its entries are all still in Redis, still naming it.
    for (const identity of onVictim) {
      const entry = await redisCommand(redis.port, ['HGET', entryKey(identity), 'address']);
      expect(entry, identity).toBe(victim.address);
    }
    expect(Date.now() - pausedAt, 'checked while its lease still held').toBeLessThan(3_500);

    h.cont(2);
    expect(await untilAll([m0, m1], (v) => statusOf(v, victim.address) === 'alive', SPREAD_BOUND_MS)).toBe(true);
    // Used again: new grains land on it too.
    const after = await append(
      m0,
      Array.from({ length: 30 }, (_, i) => `c${i}`),
    );
    expect(after.every((r) => r.ok)).toBe(true);
    expect(after.some((r) => r.value!.member === victim.address)).toBe(true);
  }, 90_000);

  it('least-loaded placement sends new grains to the members with fewer activations', async () => {
    h = await MemberHarness.start(
      Array.from({ length: 3 }, (_, i) => ({
        script: REDIS_MEMBER_SCRIPT,
        label: `m${i}`,
        env: { REDIS_URL: redis.url, PLACEMENT: i === 0 ? 'prefer-local' : 'least-loaded' },
      })),
      { clusterName: `loaded-${process.pid}`, env: { ...GOSSIP_ENV, PROBE_INTERVAL_MS: '50' } },
    );
    const [m0, m1, m2] = h.members as [MemberProcess, MemberProcess, MemberProcess];
    // m0 places on itself: 60 activations there.
    const warm = await append(
      m0,
      Array.from({ length: 60 }, (_, i) => `w${i}`),
    );
    expect(warm.every((r) => r.ok && r.value!.member === m0.address)).toBe(true);
    // Once m1 has heard m0's heartbeat with them, it places 40 new grains by load.
    expect(await untilAll([m1], (v) => (v.members.find((s) => s.address === m0.address)?.load?.activations ?? 0) >= 60, SPREAD_BOUND_MS)).toBe(true);
    const placed = await append(
      m1,
      Array.from({ length: 40 }, (_, i) => `n${i}`),
    );
    expect(placed.every((r) => r.ok)).toBe(true);
    const counts = new Map<string, number>();
    for (const r of placed) counts.set(r.value!.member, (counts.get(r.value!.member) ?? 0) + 1);
    // m1 and m2 had none: they take them all (20 each at most before either reaches m0's 60).
    expect(counts.get(m0.address) ?? 0).toBe(0);
    expect(counts.get(m1.address) ?? 0).toBeGreaterThan(10);
    expect(counts.get(m2.address) ?? 0).toBeGreaterThan(10);
  }, 60_000);
});
