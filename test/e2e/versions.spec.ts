import { afterEach, describe, expect, it } from 'vitest';
import { type CallOutcome, type MemberProcess, MemberHarness } from '../support/member-harness.js';
import type { Reply } from '../support/members/grains.js';
import { handshake, RawPeer } from '../support/raw-peer.js';

type Ok<T> = Extract<CallOutcome<T>, { ok: true }>;
const range = (min: number, max: number) => ({ PROTOCOL_MIN: String(min), PROTOCOL_MAX: String(max) });

describe('protocol version negotiation between member processes', () => {
  let h: MemberHarness | undefined;
  afterEach(async () => {
    await h?.shutdown();
    h = undefined;
  }, 30_000);

  it('members with overlapping ranges talk, both ways, on the highest common version', async () => {
    h = await MemberHarness.start([{ env: range(1, 2) }, { env: range(2, 3) }]);
    const [x, y] = h.members as [MemberProcess, MemberProcess];
    // "ready" already means each learned the other through an accepted handshake
    const ids = Array.from({ length: 30 }, (_, n) => `v${n}`);
    for (const [i, m] of [x, y].entries()) {
      const out = await m.batch<Reply>(ids.map((id, n) => ({ kind: 'counter', identity: id, method: 'exec', args: [`v-${i}-${n}`] })));
      expect(out.filter((o) => !o.ok)).toEqual([]);
      expect(new Set(out.map((o) => (o as Ok<Reply>).value.member))).toEqual(new Set([x.address, y.address]));
    }
    // what each member answers a peer: the highest version both speak
    const peer = new RawPeer(y.address);
    try {
      const ack = await peer.handshake(handshake('e2e', { minProtocol: 1, maxProtocol: 9 }));
      expect(ack).toMatchObject({ accepted: true, protocol: 3 });
    } finally {
      peer.close();
    }
  }, 60_000);

  it('refuses a member with a disjoint range: a typed error for its callers, and the refusing member logs why', async () => {
    h = await MemberHarness.start([
      { env: range(1, 1), label: 'old' },
      // client only, speaking only 2: it never learns the hosting member, so it waits for none
      // (and its membership stays incomplete for the whole test)
      { clientOnly: true, env: { ...range(2, 2), EXPECT_MEMBERS: '0', STARTUP_GRACE_MS: '600000' }, label: 'new' },
    ]);
    const [old, stranger] = h.members as [MemberProcess, MemberProcess];
    const result = await stranger.call('counter', 'x', 'exec', ['disjoint-1'], { timeoutMs: 10_000 });
    // it never learned the member (only an accepted handshake tells it), so it cannot place the grain
    expect(result).toMatchObject({ ok: false, error: { name: 'ClusterUnavailableError', code: 'GRAIN_CLUSTER_UNAVAILABLE' } });
    expect((result as { error: { message: string } }).error.message).toContain('not every listed member has answered');
    await h.readEvents();
    expect(h.execEvents().filter((e) => e.callId === 'disjoint-1')).toEqual([]);
    const why = await old.waitFor((l) => l.stream === 'stderr' && l.text.includes('Remote: refused member'), 10_000, 'a refusal log line');
    expect(why.text).toContain('no common protocol version: the caller speaks 2..2, this member 1..1');
    const seen = await stranger.waitFor(
      (l) => l.stream === 'stderr' && l.text.includes(`Remote ${old.address} refused this member`),
      10_000,
      "the caller's log line",
    );
    // it was told nothing more than that: not why, nor the other member's range
    expect(seen.text).toMatch(/refused this member: refused$/);
    expect(seen.text).not.toMatch(/protocol|1\.\.1/);
    // the refusing member is fine
    expect((await old.call('counter', 'x', 'exec', ['old-1'])).ok).toBe(true);
  }, 60_000);

  it('refuses a member restarted with a disjoint range: calls to its grains fail with ClusterUnavailableError, never run', async () => {
    h = await MemberHarness.start([{ env: range(1, 1) }, { env: range(1, 1) }]);
    const [x, y] = h.members as [MemberProcess, MemberProcess];
    const ids = Array.from({ length: 30 }, (_, n) => `u${n}`);
    const where = await x.batch<Reply>(ids.map((id) => ({ kind: 'counter', identity: id, method: 'where', args: [] })));
    const onY = ids.find((_, n) => (where[n] as Ok<Reply>).value.member === y.address)!;
    expect(onY).toBeDefined();

    await h.kill(1);
    // a botched upgrade: back on the same address, speaking only version 2
    await h.restart(1, { env: { ...range(2, 2), EXPECT_MEMBERS: '1' } });
    let last: CallOutcome | undefined;
    const until = Date.now() + 20_000;
    for (let n = 0; Date.now() < until; n++) {
      last = await x.call('counter', onY, 'exec', [`upgrade-${n}`], { timeoutMs: 3_000 });
      // until x reconnects (backoff) the call may time out unsent; then it is refused
      if (last.ok || last.error.name !== 'GrainTimeoutError') break;
      expect(last.error.neverRan).toBe(true);
    }
    expect(last).toMatchObject({ ok: false, error: { name: 'ClusterUnavailableError', code: 'GRAIN_CLUSTER_UNAVAILABLE' } });
    expect((last as { error: { message: string } }).error.message).toContain('refused this member');
    expect((last as { error: { message: string } }).error.message).not.toMatch(/protocol|2\.\.2/); // why is in its log only
    await h.readEvents();
    expect(h.execEvents().filter((e) => e.callId.startsWith('upgrade-'))).toEqual([]);
    const newY = h.members[1]!;
    const why = await newY.waitFor((l) => l.stream === 'stderr' && l.text.includes(`Remote: refused member "${x.address}"`), 10_000, 'a refusal log line');
    expect(why.text).toContain('no common protocol version: the caller speaks 1..1, this member 2..2');
  }, 60_000);
});
