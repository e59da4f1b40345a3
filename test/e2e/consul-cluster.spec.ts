/**
 * Rolling changes to a cluster whose membership comes from Consul and whose identities live in
 * Redis, with real processes: three hosting members and one client-only gateway
 * (`test/support/members/redis-member.ts` with CONSUL_URL: ConsulProvider ttl 2 s, watchWait
 * 5 s; the Redis lookup on FAST_LEASE), one real redis-server and one Consul-compatible agent
 * (`test/support/consul-agent.ts`) per file. No member is given a static list: each learns
 * the others from Consul only.
 *
 * Each test runs a continuous load through the gateway (appends and reads on 24 identities,
 * `test/support/list-load.ts`), makes one change, and then checks the whole history: no two
 * activations of one identity ran delivered turns at once, no fork, no lost acknowledged
 * append, and the epoch-fenced store accepted nothing from an older activation
 * (checkEpochHistory). The changes:
 *   1. a fourth member joins: the others learn it from Consul, new activations land on it;
 *   2. a member is stopped gracefully (SIGTERM): not one call fails, its Consul registration
 *      is gone by the time it exited, its grains answer from the others;
 *   3. a member is SIGKILLed: its grains answer again within the lease (+ slack), the calls
 *      that fail are only those a crash allows (OutcomeUnknownError, GrainTimeoutError) and
 *      only on its identities; its check turns critical (TTL), the others drop it, Consul
 *      reaps it;
 *   4. a rolling restart of the three hosting members: not one call fails;
 *   5. a rolling upgrade v1 → v2 of the grain (v1 methods only meanwhile; v2 members speak
 *      protocol 1..2): not one call fails; afterwards v2's new method works from every member.
 * Throughout, Consul holds exactly one passing registration per live hosting incarnation.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConsulTestAgent, type ConsulTestAgentService } from '../support/consul-agent.js';
import { checkLoad, countBy, describeLoadCheck, isClean, ListLoad, type ListReply, type OpResult, toJson } from '../support/list-load.js';
import { type Env, MemberHarness, type MemberProcess, type MemberSpec, ROOT } from '../support/member-harness.js';
import { handshake, RawPeer } from '../support/raw-peer.js';
import { type RedisHandle, startRedis } from '../support/redis-server.js';

const REDIS_MEMBER_SCRIPT = join(ROOT, 'dist', 'test', 'support', 'members', 'redis-member.js');
/** FAST_LEASE: lease 1.5 s. */
const LEASE_MS = 1_500;
/** The members' ConsulProvider TTL (redis-member.ts). */
const TTL_MS = 2_000;
/** redis-member.ts exits anyway this long after a stop began (control.ts forceExitMs). */
const FORCE_EXIT_MS = 3_000;
const HOSTING = 3;
const GATEWAY = 3;
const IDENTITIES = 24;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const hrnow = () => process.hrtime.bigint();
const msSince = (t: bigint) => Number(hrnow() - t) / 1e6;

/** Poll `predicate` until it holds or `timeoutMs` passed; whether it held. */
async function waitUntil(predicate: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 100): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return true;
    if (Date.now() > until) return false;
    await sleep(stepMs);
  }
}

interface Stats {
  memberId: string;
  incarnation: string;
  members: Array<{ id: string; incarnation: string; address: string; kinds: string[] }>;
  stats: { activations: number; activated: number; fenced: number };
  grainVersion: number;
}

async function stats(member: MemberProcess): Promise<Stats> {
  const result = await member.request({ cmd: 'stats' }, 10_000);
  return result['value'] as Stats;
}

/** `memberId incarnation` of the hosting members a member lists now (a client-only member lists itself too, without an address). */
async function listed(member: MemberProcess): Promise<string[]> {
  return (await stats(member)).members
    .filter((m) => m.address !== '')
    .map((m) => `${m.id} ${m.incarnation}`)
    .sort();
}

// The cluster of one test ------------------------------------------------------------------------

let redis: RedisHandle;
let agent: ConsulTestAgent;
let clusterSeq = 0;

/** Everything one test started, ended in afterEach even when the test failed. */
interface Run {
  clusterName: string;
  harnesses: MemberHarness[];
  load: ListLoad;
  identities: string[];
}
let run: Run | undefined;

/** Every member process of the run, restarted and killed ones included. */
const processes = (r: Run) => r.harnesses.flatMap((h) => h.processes);

function memberEnv(clusterName: string): Env {
  return {
    REDIS_URL: redis.url,
    CONSUL_URL: agent.url,
    // Consul keeps a dead member's critical entry this long (the agent's minimum is lowered to 1 s below).
    CONSUL_DEREGISTER_CRITICAL_AFTER: '1s',
    LEASE: 'fast',
    EXPECT_MEMBERS: String(HOSTING),
    // NOTE: no static list at all: the members learn each other from Consul only.
    STATIC_MEMBERS: undefined,
    CLUSTER_NAME: clusterName,
  };
}

/** Three hosting members and a client-only gateway; 24 identities appended to once each; the load running through the gateway. */
async function startRun(prefix: string): Promise<{ r: Run; h: MemberHarness; gateway: MemberProcess }> {
  const clusterName = `consul-${process.pid}-${++clusterSeq}`;
  const specs: MemberSpec[] = [
    ...Array.from({ length: HOSTING }, (_, i): MemberSpec => ({ script: REDIS_MEMBER_SCRIPT, label: `m${i}` })),
    { script: REDIS_MEMBER_SCRIPT, clientOnly: true, label: 'gateway' },
  ];
  const load = new ListLoad({ lanes: 3, batch: 4, gapMs: 20, timeoutMs: 5_000, appendRatio: 0.6 });
  const r: Run = { clusterName, harnesses: [], load, identities: Array.from({ length: IDENTITIES }, (_, i) => `${prefix}${i}`) };
  run = r;
  const h = await MemberHarness.start(specs, { clusterName, env: memberEnv(clusterName) });
  r.harnesses.push(h);
  const gateway = h.members[GATEWAY]!;
  const warm = await load.send(
    gateway,
    r.identities.map((id) => load.appendOp(id)),
  );
  expect(
    warm.filter((o) => !o.ok),
    'warm-up appends',
  ).toEqual([]);
  // (random placement from the gateway: the identities spread over the three members)
  expect(new Set(warm.map((o) => o.reply!.member)).size, 'the warm-up spread over the members').toBeGreaterThan(1);
  for (const id of r.identities) load.targets.add(id);
  load.start(gateway);
  return { r, h, gateway };
}

/** Stop the load, read every identity once more, run the checks; fails the test on any violation. */
async function finish(r: Run, gateway: MemberProcess, what: string, identities = r.identities): Promise<Map<string, OpResult>> {
  await r.load.stop();
  const final = await r.load.finalReads(identities, gateway);
  const result = await checkLoad({ load: r.load, processes: () => processes(r), final, redis, clusterName: r.clusterName });
  console.log(
    `[consul-cluster] ${what}: ${r.load.results.length} ops (${countBy(r.load.results.map((o) => (o.ok ? 'ok' : o.error!.name)))}); ${describeLoadCheck(result)}`,
  );
  expect(isClean(result), `${what}: the checker found violations:\n${describeLoadCheck(result)}`).toBe(true);
  expect(result.ackedAppends, `${what}: too little was acknowledged to mean anything`).toBeGreaterThan(100);
  return final;
}

function expectNoFailures(r: Run, what: string): void {
  const failed = r.load.failed();
  expect(failed.length, `${what}: failed calls (${countBy(failed.map((o) => o.error!.name))}): ${toJson(failed.slice(0, 5))}`).toBe(0);
}

// Consul's view -----------------------------------------------------------------------------------

function registrations(clusterName: string): ConsulTestAgentService[] {
  return agent.services().filter((s) => s.name === clusterName);
}

/** `memberId incarnation status` of every registration of the cluster. */
function consulView(clusterName: string): string[] {
  return registrations(clusterName)
    .map((s) => `${s.meta?.['member-id']} ${s.meta?.['incarnation']} ${s.checks.map((c) => c.status).join(',')}`)
    .sort();
}

/** `memberId incarnation passing` of every live hosting member, as the members say. */
async function liveView(r: Run): Promise<string[]> {
  const live = processes(r).filter((p) => p.alive && p.port !== undefined);
  return (await Promise.all(live.map((p) => stats(p)))).map((s) => `${s.memberId} ${s.incarnation} passing`).sort();
}

/** Consul holds exactly one passing registration per live hosting incarnation, and nothing else. */
async function expectConsulMatchesLive(r: Run, what: string): Promise<void> {
  const live = await liveView(r);
  expect(live.length, `${what}: live hosting members`).toBeGreaterThan(0);
  expect(consulView(r.clusterName), `${what}: Consul's registrations`).toEqual(live);
}

/** Member ids and incarnations every live hosting member and the gateway list, until they all list `expected` (or the timeout). */
async function expectAllList(r: Run, what: string, timeoutMs = 8_000): Promise<void> {
  const expected = (await liveView(r)).map((line) => line.replace(/ passing$/, ''));
  const members = processes(r).filter((p) => p.alive);
  const seen = new Map<string, string[]>();
  await waitUntil(async () => {
    for (const m of members) seen.set(m.label, await listed(m));
    return [...seen.values()].every((list) => toJson(list) === toJson(expected));
  }, timeoutMs);
  for (const [label, list] of seen) expect(list, `${what}: ${label}'s member list`).toEqual(expected);
}

/** Who served each identity last (the acknowledged op settled last). */
function lastServer(load: ListLoad, identities: readonly string[]): Map<string, ListReply> {
  const out = new Map<string, ListReply>();
  for (const r of load.acked()) if (identities.includes(r.identity)) out.set(r.identity, r.reply!);
  return out;
}

/** Identities whose last acknowledged op was served by member `address`. */
function servedBy(load: ListLoad, identities: readonly string[], address: string): string[] {
  return [...lastServer(load, identities)].filter(([, reply]) => reply.member === address).map(([id]) => id);
}

/** For each identity: ms from `since` until its first acknowledged op, invoked after `since`, served elsewhere than `address`. */
function answeredElsewhere(load: ListLoad, identities: readonly string[], address: string, since: bigint): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of load.acked()) {
    if (!identities.includes(r.identity) || r.invokedAt <= since || r.reply!.member === address) continue;
    const ms = Number(r.settledAt - since) / 1e6;
    if (!out.has(r.identity) || ms < out.get(r.identity)!) out.set(r.identity, ms);
  }
  return out;
}

/**
 * Calls that are at member `victim` when it is told to stop: for each of its identities, a read
 * holding its turn for `holdMs` with two appends queued behind it, sent from the gateway (not
 * awaited). Give them ~100 ms to arrive before signalling.
 */
function inFlight(r: Run, gateway: MemberProcess, identities: readonly string[], holdMs = 400): Promise<OpResult[]> {
  const ops = identities.flatMap((id) => [r.load.readOp(id, 5_000, holdMs), r.load.appendOp(id), r.load.appendOp(id)]);
  return r.load.send(gateway, ops);
}

/** Stop member i gracefully, check its exit and its Consul registration, start it again (with `env`), wait until everyone lists it. */
async function restartGracefully(r: Run, h: MemberHarness, i: number, env: Env = {}): Promise<{ downMs: number }> {
  const old = h.members[i]!;
  const { memberId, incarnation } = await stats(old);
  const held = inFlight(r, h.members[GATEWAY]!, servedBy(r.load, r.load.targets.size > 0 ? [...r.load.targets] : r.identities, old.address));
  await sleep(100);
  const stoppedAt = hrnow();
  await h.kill(i, 'SIGTERM', 15_000);
  expect(old.exitStatus, `${old.label} exited by itself${old.tail(20)}`).toEqual({ code: 0, signal: null });
  expect(msSince(stoppedAt), `${old.label}: its shutdown finished (was not cut short at FORCE_EXIT_MS)`).toBeLessThan(FORCE_EXIT_MS);
  // deregistered while leaving: gone from Consul by the time the process is gone
  expect(
    consulView(r.clusterName).filter((line) => line.startsWith(`${memberId} `)),
    `${old.label}: its registration after a graceful stop`,
  ).toEqual([]);
  const deregistered = agent.requests.filter((q) => q.method === 'PUT' && q.path === `/v1/agent/service/deregister/${r.clusterName}-${incarnation}`);
  expect(
    deregistered.map((q) => q.status),
    `${old.label}: deregistered its incarnation`,
  ).toEqual([200]);
  const fresh = await h.restart(i, { env });
  const downMs = msSince(stoppedAt);
  const heldOut = await held;
  expect(
    heldOut.filter((o) => !o.ok),
    `${old.label}: calls in flight at it when it stopped`,
  ).toEqual([]);
  expect(fresh.ready!['incarnation']).not.toBe(incarnation);
  await expectAllList(r, `after ${fresh.label} started`);
  await expectConsulMatchesLive(r, `after ${fresh.label} started`);
  return { downMs };
}

// ------------------------------------------------------------------------------------------------

describe('a cluster through Consul and Redis: rolling changes, real processes', () => {
  beforeAll(async () => {
    redis = await startRedis({ label: 'consul-cluster' });
    // NOTE: Consul's 1 min minimum for deregisterCriticalAfter and 30 s reaper, shortened for tests.
    agent = await ConsulTestAgent.start({ minDeregisterCriticalAfter: 1_000, reapInterval: 250 });
  });

  afterAll(async () => {
    await agent?.stop();
    await redis?.stop();
  });

  afterEach(async () => {
    const r = run;
    run = undefined;
    if (r === undefined) return;
    r.load.halt();
    await Promise.all(r.harnesses.map((h) => h.shutdown(1_500)));
    await r.load.stop();
  }, 30_000);

  it('a fourth member joins through Consul alone: everyone learns it, new activations land on it, nothing fails', async () => {
    const { r, h, gateway } = await startRun('join-');
    await sleep(1_000);
    await expectConsulMatchesLive(r, 'three members');
    await expectAllList(r, 'three members');

    // the newcomer: its own harness, no static list, knows the others from Consul only
    const hj = await MemberHarness.start([{ script: REDIS_MEMBER_SCRIPT, label: 'm3 (joins)' }], {
      clusterName: r.clusterName,
      env: { ...memberEnv(r.clusterName), EXPECT_MEMBERS: String(HOSTING + 1) },
    });
    r.harnesses.push(hj);
    const joiner = hj.members[0]!;
    expect((joiner.ready!['members'] as unknown[]).length, 'the newcomer knew the three others when ready').toBe(HOSTING + 1);
    await expectConsulMatchesLive(r, 'four members');
    await expectAllList(r, 'four members');

    // new identities from the gateway (random placement over the four): some land on the newcomer
    const fresh: string[] = [];
    let onJoiner: string[] = [];
    for (let round = 0; round < 6 && onJoiner.length === 0; round++) {
      const batch = Array.from({ length: 8 }, (_, n) => `join-new-${round}-${n}`);
      const out = await r.load.send(
        gateway,
        batch.map((id) => r.load.appendOp(id)),
      );
      expect(
        out.filter((o) => !o.ok),
        'appends to new identities',
      ).toEqual([]);
      fresh.push(...batch);
      onJoiner = out.filter((o) => o.reply!.member === joiner.address).map((o) => o.identity);
    }
    expect(onJoiner.length, 'new activations landed on the newcomer').toBeGreaterThan(0);
    const activatedThere = joiner.events.filter((e) => e['event'] === 'activate').map((e) => e['identity']);
    expect(activatedThere).toEqual(expect.arrayContaining(onJoiner));
    for (const id of fresh) r.load.targets.add(id);
    await sleep(1_500);
    // and they keep answering there under the load
    const stillThere = servedBy(r.load, onJoiner, joiner.address);
    expect(stillThere, 'the identities placed on the newcomer stay there').toEqual(onJoiner);
    console.log(`[consul-cluster] join: ${onJoiner.length}/${fresh.length} new identities placed on the newcomer`);
    expect(h.members.every((m) => m.alive)).toBe(true);
    await finish(r, gateway, 'join', [...r.identities, ...fresh]);
    expectNoFailures(r, 'join');
  }, 90_000);

  it('a member stopped gracefully (SIGTERM): deregistered at once, its grains answer from the others, not one call fails', async () => {
    const { r, h, gateway } = await startRun('leave-');
    await sleep(1_200);
    await expectConsulMatchesLive(r, 'three members');
    const victim = h.members[2]!;
    const { memberId, incarnation } = await stats(victim);
    const itsIds = servedBy(r.load, r.identities, victim.address);
    expect(itsIds.length, 'the victim hosts some identities').toBeGreaterThan(0);
    // calls at the victim when it is told to stop: held turns, calls queued behind them
    const held = inFlight(r, gateway, itsIds);
    await sleep(100);
    const stoppedAt = hrnow();
    await h.kill(2, 'SIGTERM', 15_000);
    const exitMs = msSince(stoppedAt);
    expect(exitMs, 'its shutdown finished (was not cut short at FORCE_EXIT_MS)').toBeLessThan(FORCE_EXIT_MS);
    const heldOut = await held;
    expect(
      heldOut.filter((o) => !o.ok),
      'the calls in flight at the victim when it stopped',
    ).toEqual([]);
    const heldThere = heldOut.filter((o) => o.reply!.member === victim.address).length;
    expect(victim.exitStatus, `the victim exited by itself${victim.tail(20)}`).toEqual({ code: 0, signal: null });
    // Consul: its registration is gone by the time its process is (deregistered, not expired)
    expect(
      consulView(r.clusterName).filter((line) => line.startsWith(`${memberId} `)),
      'its registration',
    ).toEqual([]);
    expect(
      agent.requests.filter((q) => q.path === `/v1/agent/service/deregister/${r.clusterName}-${incarnation}`).map((q) => q.status),
      'deregistered',
    ).toEqual([200]);
    await expectConsulMatchesLive(r, 'after the graceful stop');
    await expectAllList(r, 'after the graceful stop');
    // its grains answer from the others
    await waitUntil(() => answeredElsewhere(r.load, itsIds, victim.address, stoppedAt).size === itsIds.length, 8_000);
    const moved = answeredElsewhere(r.load, itsIds, victim.address, stoppedAt);
    expect([...moved.keys()].sort(), "the stopped member's identities answered from the others").toEqual([...itsIds].sort());
    await sleep(500);
    console.log(
      `[consul-cluster] graceful stop: exited ${exitMs.toFixed(0)} ms after SIGTERM; of the ${heldOut.length} calls in flight at it, ${heldThere} were served there (drained), the others elsewhere; ` +
        `its ${itsIds.length} identities answered elsewhere after ${Math.max(...moved.values()).toFixed(0)} ms at most`,
    );
    await finish(r, gateway, 'graceful stop');
    expectNoFailures(r, 'graceful stop');
  }, 90_000);

  it('a member SIGKILLed: its grains answer again within the lease, only typed in-flight failures; Consul turns it critical and the others drop it', async () => {
    const { r, h, gateway } = await startRun('kill-');
    await sleep(1_200);
    await expectConsulMatchesLive(r, 'three members');
    const victim = h.members[2]!;
    const { memberId, incarnation } = await stats(victim);
    const itsIds = servedBy(r.load, r.identities, victim.address);
    expect(itsIds.length, 'the victim hosts some identities').toBeGreaterThan(0);
    const killedAt = hrnow();
    await h.kill(2, 'SIGKILL');
    // its grains answer again, from the others, within the lease + slack
    await waitUntil(() => answeredElsewhere(r.load, itsIds, victim.address, killedAt).size === itsIds.length, 10_000);
    const moved = answeredElsewhere(r.load, itsIds, victim.address, killedAt);
    expect([...moved.keys()].sort(), "the killed member's identities answered from the others").toEqual([...itsIds].sort());
    const failoverMs = Math.max(...moved.values());
    // Consul: its check turns critical at the TTL (it stopped passing it)
    const checkId = `service:${r.clusterName}-${incarnation}`;
    const critical = await waitUntil(
      () => registrations(r.clusterName).some((s) => s.checks.some((c) => c.checkId === checkId && c.status === 'critical')),
      TTL_MS + 3_000,
      50,
    );
    const criticalMs = msSince(killedAt);
    expect(critical, `its check ${checkId} turned critical: ${toJson(consulView(r.clusterName))}`).toBe(true);
    expect(registrations(r.clusterName).find((s) => s.meta?.['incarnation'] === incarnation)?.checks[0]?.output).toMatch(/^TTL expired/);
    // ...and it drops out of the survivors' member lists
    await expectAllList(r, 'after the kill');
    for (const m of [h.members[0]!, h.members[1]!, gateway])
      expect(
        (await stats(m)).members.map((x) => x.id),
        `${m.label}`,
      ).not.toContain(memberId);
    // ...and Consul reaps the critical entry after deregisterCriticalAfter (1 s here)
    expect(await waitUntil(() => registrations(r.clusterName).every((s) => s.meta?.['incarnation'] !== incarnation), 5_000)).toBe(true);
    await expectConsulMatchesLive(r, 'after the reap');
    await sleep(500);
    const failed = r.load.failed();
    console.log(
      `[consul-cluster] SIGKILL: its ${itsIds.length} identities answered from the others after ${failoverMs.toFixed(0)} ms at most; ` +
        `check critical after ${criticalMs.toFixed(0)} ms; failed calls: ${countBy(failed.map((o) => `${o.error!.name}${o.error!['neverRan'] === true ? ' (never ran)' : ''}`))}`,
    );
    expect(failoverMs, 'failover within the lease + slack').toBeLessThan(LEASE_MS + 2_000);
    // Only what a crash allows: calls in flight to it whose outcome is unknown, or that timed out; only on its identities.
    for (const o of failed) {
      expect(['OutcomeUnknownError', 'GrainTimeoutError'], `failed call ${toJson(o)}`).toContain(o.error!.name);
      expect(itsIds, `failed call on an identity the killed member did not host: ${toJson(o)}`).toContain(o.identity);
      expect(o.invokedAt < killedAt + BigInt(LEASE_MS + 2_000) * 1_000_000n, `failed call invoked long after the kill: ${toJson(o)}`).toBe(true);
    }
    await finish(r, gateway, 'SIGKILL');
  }, 90_000);

  it('a rolling restart of the three members, one by one: not one call fails, no duplicate activation, nothing acknowledged lost', async () => {
    const { r, h, gateway } = await startRun('roll-');
    await sleep(1_000);
    await expectConsulMatchesLive(r, 'three members');
    const downs: number[] = [];
    for (let i = 0; i < HOSTING; i++) {
      const { downMs } = await restartGracefully(r, h, i);
      downs.push(downMs);
      await sleep(800);
    }
    // every identity now lives on one of the new incarnations
    const incarnations = new Set(await Promise.all(h.members.slice(0, HOSTING).map(async (m) => (await stats(m)).memberId)));
    const moved = await waitUntil(() => [...lastServer(r.load, r.identities).values()].every((reply) => incarnations.has(reply.member)), 5_000);
    expect(moved).toBe(true);
    console.log(`[consul-cluster] rolling restart: each member down ${downs.map((ms) => ms.toFixed(0)).join(', ')} ms (SIGTERM to ready, all listing it)`);
    await finish(r, gateway, 'rolling restart');
    expectNoFailures(r, 'rolling restart');
    // each identity was activated again (it moved at least once), never twice at a time (checked above)
    const activations = new Map<string, number>();
    for (const e of processes(r).flatMap((p) => p.events.filter((x) => x['event'] === 'activate')))
      activations.set(e['identity'] as string, (activations.get(e['identity'] as string) ?? 0) + 1);
    for (const id of r.identities) expect(activations.get(id) ?? 0, `${id}: activations`).toBeGreaterThan(1);
  }, 120_000);

  it('a rolling upgrade v1 → v2, one by one under load (v1 methods only): not one call fails; then v2 answers its new method from every member', async () => {
    const { r, h, gateway } = await startRun('upgrade-');
    await sleep(1_000);
    const v2: Env = { GRAIN_VERSION: '2', PROTOCOL_MIN: '1', PROTOCOL_MAX: '2' };
    for (let i = 0; i < HOSTING; i++) {
      await restartGracefully(r, h, i, v2);
      expect((await stats(h.members[i]!)).grainVersion).toBe(2);
      await sleep(800);
    }
    // v2 advertises protocol 1..2: a peer speaking up to 9 is accepted on 2
    const peer = new RawPeer(h.members[0]!.address);
    try {
      const ack = await peer.handshake(handshake(r.clusterName, { minProtocol: 1, maxProtocol: 9 }));
      expect(ack).toMatchObject({ accepted: true, protocol: 2 });
    } finally {
      peer.close();
    }
    // the v1 load saw v2's extra field once its identities moved to v2 members, and nothing else changed for it
    const upgradedAt = hrnow();
    await sleep(1_000);
    const lately = r.load.acked().filter((o) => o.invokedAt > upgradedAt);
    expect(lately.length).toBeGreaterThan(0);
    expect(countBy(lately.map((o) => `version ${o.reply!.version ?? 1}`))).toBe(`version 2 ${lately.length}`);
    const final = await finish(r, gateway, 'rolling upgrade');
    expectNoFailures(r, 'rolling upgrade');
    const versions = countBy(r.load.acked().map((o) => `v${o.reply!.version ?? 1}`));
    // the new method, from the gateway and from every hosting member
    for (const caller of [gateway, ...h.members.slice(0, HOSTING)]) {
      const out = await r.load.send(
        caller,
        r.identities.map((id) => r.load.sizeOp(id)),
      );
      for (const o of out) {
        expect(o.ok, `size of ${o.identity} from ${caller.label}: ${toJson(o.error)}`).toBe(true);
        expect(o.reply!.version).toBe(2);
        expect(o.reply!.length, `size of ${o.identity}`).toBe(final.get(o.identity)!.reply!.list!.length);
      }
    }
    console.log(`[consul-cluster] rolling upgrade: replies by grain version over the run: ${versions}`);
  }, 120_000);
});
