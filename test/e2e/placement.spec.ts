import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CallOutcome, MemberHarness } from '../support/member-harness.js';
import type { Reply } from '../support/members/grains.js';

/**
 * Three member processes (static membership, hash placement), talking over real gRPC.
 */
describe('three member processes', () => {
  let h: MemberHarness | undefined;

  beforeAll(async () => {
    h = await MemberHarness.start(3);
  }, 60_000);

  afterAll(async () => {
    await h?.shutdown();
  }, 30_000);

  it('places 1,000 identities called from every member on exactly one activation each', async () => {
    const { members } = h!;
    const ids = Array.from({ length: 1_000 }, (_, n) => `id-${n}`);
    // All three members call all 1,000 identities at the same time.
    const outcomes = await Promise.all(
      members.map((m, i) =>
        m.batch<Reply>(
          ids.map((id, n) => ({ kind: 'counter', identity: id, method: 'exec', args: [`m${i}-c${n}`], timeoutMs: 20_000 })),
          60_000,
        ),
      ),
    );
    for (const list of outcomes) expect(list.filter((o) => !o.ok)).toEqual([]);
    const replies = outcomes.map((list) => list.map((o) => (o as Extract<CallOutcome<Reply>, { ok: true }>).value));

    const addresses = members.map((m) => m.address);
    const hosts = new Set<string>();
    ids.forEach((id, n) => {
      const three = replies.map((r) => r[n]!);
      // every caller reached the same activation, on the same member…
      expect(new Set(three.map((r) => r.activation)).size, id).toBe(1);
      expect(new Set(three.map((r) => r.member)).size, id).toBe(1);
      // …which served exactly these three calls, one after the other
      expect(three.map((r) => r.count).sort(), id).toEqual([1, 2, 3]);
      expect(three[0]!.identity).toBe(id);
      hosts.add(three[0]!.member);
    });
    // spread over all three members (ids are the advertised addresses)
    expect(hosts).toEqual(new Set(addresses));

    // What the members themselves recorded agrees: each call ran once, on the member that
    // reported it, and each identity's executions all ran on one activation.
    await h!.readEvents();
    const execs = h!.execEvents().filter((e) => e.kind === 'counter');
    expect(execs).toHaveLength(3_000);
    expect(new Set(execs.map((e) => e.callId)).size).toBe(3_000);
    const byIdentity = new Map<string, Set<string>>();
    for (const m of members) {
      for (const e of m.execEvents()) {
        if (e.kind !== 'counter') continue;
        expect(e.member).toBe(m.address);
        byIdentity.set(e.identity, (byIdentity.get(e.identity) ?? new Set()).add(e.activation));
      }
    }
    expect(byIdentity.size).toBe(1_000);
    for (const [id, activations] of byIdentity) expect(activations.size, id).toBe(1);
    ids.forEach((id, n) => expect([...byIdentity.get(id)!][0]).toBe(replies[0]![n]!.activation));

    const stats = await Promise.all(members.map((m) => m.stats()));
    expect(stats.reduce((sum, s) => sum + s.stats.activations, 0)).toBe(1_000);
    for (const s of stats) expect(s.members.map((m) => m.address).sort()).toEqual([...addresses].sort());
  }, 90_000);

  it('makes grain-to-grain calls that cross members', async () => {
    const caller = h!.members[0]!;
    const pairs = Array.from({ length: 40 }, (_, n) => ({ relay: `fwd-r${n}`, counter: `fwd-c${n}`, callId: `fwd-${n}` }));
    const outcomes = await caller.batch<{ relay: Reply; counter: Reply }>(
      pairs.map((p) => ({ kind: 'relay', identity: p.relay, method: 'forward', args: [p.callId, p.counter], timeoutMs: 20_000 })),
      60_000,
    );
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    await h!.readEvents();
    let crossing = 0;
    pairs.forEach((p, n) => {
      const { relay, counter } = (outcomes[n] as Extract<CallOutcome<{ relay: Reply; counter: Reply }>, { ok: true }>).value;
      expect(relay.identity).toBe(p.relay);
      expect(counter.identity).toBe(p.counter);
      if (relay.member !== counter.member) crossing++;
      // each hop ran once, where the reply says it ran
      const execs = h!.execEvents().filter((e) => e.callId === p.callId);
      expect(execs.map((e) => `${e.kind}.${e.method}@${e.member}`).sort()).toEqual([`counter.exec@${counter.member}`, `relay.forward@${relay.member}`].sort());
    });
    // with three members, most of 40 hops cross (each stays put with chance 1/3)
    expect(crossing).toBeGreaterThan(0);
  }, 60_000);

  it('fails an A→B→A cycle across members fast, with the cycle error, long before the deadline', async () => {
    const [m0, m1, m2] = h!.members as [
      NonNullable<typeof h>['members'][number],
      NonNullable<typeof h>['members'][number],
      NonNullable<typeof h>['members'][number],
    ];
    // Find relays A on m1 and B on m2, and call A from m0: the cycle spans three processes.
    const candidates = Array.from({ length: 60 }, (_, n) => `cyc-r${n}`);
    const where = await m0.batch<Reply>(candidates.map((id) => ({ kind: 'relay', identity: id, method: 'where', args: [] })));
    const on = (address: string) => candidates.find((_, n) => where[n]!.ok && (where[n] as { value: Reply }).value.member === address);
    const a = on(m1.address);
    const b = on(m2.address);
    expect(a).toBeDefined();
    expect(b).toBeDefined();

    const timeoutMs = 20_000;
    const result = await m0.call<string>('relay', a!, 'bounce', ['cycle-1', b!], { timeoutMs });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    // A's bounce rethrows what B's back got: the cycle error, typed, from where it began.
    expect(result.error).toMatchObject({
      name: 'GrainInvocationError',
      code: 'GRAIN_INVOCATION_FAILED',
      remoteName: 'CallCycleError',
      remoteCode: 'GRAIN_CALL_CYCLE',
    });
    expect(result.error.remoteMessage).toContain(`relay/${a} → relay/${b} → relay/${a}`);
    // fast: a deadlock would have waited for the deadline (a bound, not a performance figure)
    expect(result.elapsedMs).toBeLessThan(timeoutMs / 2);
    // A.bounce and B.back ran once each, where expected; A.hello never ran.
    const execs = h!.execEvents().filter((e) => e.callId === 'cycle-1');
    expect(execs.map((e) => `${e.identity}.${e.method}@${e.member}`).sort()).toEqual([`${a}.bounce@${m1.address}`, `${b}.back@${m2.address}`].sort());
    // and A is not stuck: it serves the next call
    expect((await m0.call<string>('relay', a!, 'hello', ['after-cycle'])).ok).toBe(true);
  }, 60_000);
});
