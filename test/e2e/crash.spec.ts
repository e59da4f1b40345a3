import { afterEach, describe, expect, it } from 'vitest';
import { type CallError, type CallOutcome, type CallSpec, type MemberProcess, MemberHarness } from '../support/member-harness.js';
import type { Reply } from '../support/members/grains.js';

/** A call's deadline is kept to within this much (timer resolution, a loaded machine); a hang would blow it. */
const DEADLINE_SLACK_MS = 3_000;

type Ok<T> = Extract<CallOutcome<T>, { ok: true }>;

/** Which member hosts each identity of `kind`, as seen through `via`. */
async function placement(via: MemberProcess, kind: string, ids: string[]): Promise<Map<string, string>> {
  const where = await via.batch<Reply>(ids.map((identity) => ({ kind, identity, method: 'where', args: [] })));
  const map = new Map<string, string>();
  where.forEach((o, n) => {
    if (!o.ok) throw new Error(`where(${ids[n]}) failed: ${JSON.stringify(o.error)}`);
    map.set(ids[n]!, o.value.member);
  });
  return map;
}

function idsOn(map: Map<string, string>, address: string, count: number): string[] {
  const ids = [...map].filter(([, member]) => member === address).map(([id]) => id);
  if (ids.length < count) throw new Error(`only ${ids.length} of ${map.size} identities on ${address}`);
  return ids.slice(0, count);
}

/** Every callId ran at most once, counting every process (the killed one's output up to its death too). */
function expectAtMostOnce(h: MemberHarness, callIds: Iterable<string>): void {
  const runs = new Map<string, number>();
  for (const e of h.execEvents()) runs.set(e.callId, (runs.get(e.callId) ?? 0) + 1);
  for (const id of callIds) expect(runs.get(id) ?? 0, `runs of ${id}`).toBeLessThanOrEqual(1);
}

/** Never ran, and said so with a type: it had nowhere to go, or its deadline passed while it waited. */
function expectNeverRanTyped(error: CallError, what: string): void {
  const ok = error.name === 'ClusterUnavailableError' || (error.name === 'GrainTimeoutError' && error.neverRan === true);
  expect(ok, `${what}: ${JSON.stringify(error)}`).toBe(true);
}

describe('a member process killed with calls in flight', () => {
  let h: MemberHarness | undefined;
  afterEach(async () => {
    await h?.shutdown();
    h = undefined;
  }, 30_000);

  it('fails its callers typed and in time, runs nothing twice, moves nothing, and serves again once restarted', async () => {
    h = await MemberHarness.start(3);
    const [m0, m1, victim] = h.members as [MemberProcess, MemberProcess, MemberProcess];
    const oldIncarnation = victim.ready!['incarnation'] as string;

    const probe = Array.from({ length: 90 }, (_, n) => `s${n}`);
    const before = await placement(m0, 'slow', probe);
    const onVictim = idsOn(before, victim.address, 6);
    const onM1 = idsOn(before, m1.address, 3);
    const onM0 = idsOn(before, m0.address, 3);

    const timeoutMs = 8_000;
    const hold = (identity: string, callId: string, ms: number): CallSpec => ({ kind: 'slow', identity, method: 'hold', args: [callId, ms], timeoutMs });
    // m0 and m1 each: a running call on three of the victim's grains, and one queued behind
    // each (sent in the same write, so written too)
    const inFlight = (ids: string[]) => ids.flatMap((id) => [hold(id, `run-${id}`, 60_000), hold(id, `queued-${id}`, 0)]);
    const m0Calls = inFlight(onVictim.slice(0, 3));
    const m1Calls = inFlight(onVictim.slice(3));
    // calls between the survivors, in flight across the crash; and the victim's own calls out
    const survivorCalls = onM1.map((id) => hold(id, `surv-${id}`, 1_500));
    const victimOut = onM0.map((id) => hold(id, `out-${id}`, 1_500));

    const m0Batch = m0.batch(m0Calls, 30_000);
    const m1Batch = m1.batch(m1Calls, 30_000);
    const survivorBatch = m0.batch<Reply>(survivorCalls, 30_000);
    const victimBatch = victim.batch(victimOut, 30_000).catch((error: Error) => error); // dies with the victim
    await victim.waitForExec(onVictim.map((id) => `run-${id}`));
    await m0.waitForExec(onM0.map((id) => `out-${id}`));
    await m1.waitForExec(onM1.map((id) => `surv-${id}`));

    // and calls made just as it dies: written or not, who knows
    const lateCalls = onVictim.map((id) => hold(id, `late-${id}`, 0));
    const lateBatch = m1.batch(lateCalls, 30_000);
    await h.kill(2, 'SIGKILL');
    expect(victim.exitStatus?.signal).toBe('SIGKILL');
    expect(await victimBatch).toBeInstanceOf(Error);

    // Every call to the victim fails typed, within its deadline.
    const [fromM0, fromM1, fromLate] = await Promise.all([m0Batch, m1Batch, lateBatch]);
    const ranOnVictim = new Set(victim.execEvents().map((e) => e.callId));
    [...m0Calls, ...m1Calls].forEach((call, n) => {
      const o = [...fromM0, ...fromM1][n]!;
      const callId = call.args![0] as string;
      expect(o.ok, callId).toBe(false);
      if (o.ok) return;
      // written to the victim (running, or queued in the same write): it may have run.
      expect(o.error, callId).toMatchObject({ name: 'OutcomeUnknownError', code: 'GRAIN_OUTCOME_UNKNOWN' });
      expect(o.elapsedMs).toBeLessThanOrEqual(timeoutMs + DEADLINE_SLACK_MS);
    });
    lateCalls.forEach((call, n) => {
      const o = fromLate[n]!;
      const callId = call.args![0] as string;
      expect(o.ok, callId).toBe(false);
      if (o.ok) return;
      // if it ran, the caller must not be told it did not; if it was never written it may
      // have been sent on (to the same, dead, member) until its deadline
      if (ranOnVictim.has(callId)) expect(o.error.name, callId).toBe('OutcomeUnknownError');
      else if (o.error.name !== 'OutcomeUnknownError') expectNeverRanTyped(o.error, callId);
      expect(o.elapsedMs).toBeLessThanOrEqual(timeoutMs + DEADLINE_SLACK_MS);
    });
    // the running calls ran (on the victim, once); the ones queued behind them never did
    for (const id of onVictim) {
      expect(ranOnVictim.has(`run-${id}`)).toBe(true);
      expect(ranOnVictim.has(`queued-${id}`)).toBe(false);
    }

    // Calls between survivors, in flight across the crash, were not disturbed.
    const survivors = await survivorBatch;
    for (const o of survivors) {
      expect(o.ok, JSON.stringify(o)).toBe(true);
      expect((o as Ok<Reply>).value.member).toBe(m1.address);
    }
    // The victim's own calls out ran on m0, whose member kept going (the answer had nowhere to go).
    await h!.readEvents();
    expect(m0.execEvents().filter((e) => e.callId.startsWith('out-'))).toHaveLength(onM0.length);
    expect(m0.alive && m1.alive).toBe(true);

    // While the victim is down: its grains are not moved (static membership, hash placement):
    // calls to them fail typed within their deadlines and run nowhere; every other grain works.
    const downMs = 3_000;
    const during = await Promise.all(
      [m0, m1].map((m, i) =>
        m.batch<Reply>(
          probe.map((id) => ({ kind: 'slow', identity: id, method: 'hold', args: [`down-${i}-${id}`, 0], timeoutMs: downMs })),
          30_000,
        ),
      ),
    );
    during.forEach((list, i) =>
      list.forEach((o, n) => {
        const id = probe[n]!;
        const callId = `down-${i}-${id}`;
        if (before.get(id) === victim.address) {
          expect(o.ok, callId).toBe(false);
          if (!o.ok) expectNeverRanTyped(o.error, callId);
          expect(o.elapsedMs).toBeLessThanOrEqual(downMs + DEADLINE_SLACK_MS);
        } else {
          expect(o.ok, `${callId}: ${JSON.stringify(o)}`).toBe(true);
          expect((o as Ok<Reply>).value.member, callId).toBe(before.get(id)); // where it was before
        }
      }),
    );
    await h.readEvents();
    const ranDuringOutage = new Set(h.execEvents().map((e) => e.callId));
    for (const [id, member] of before) {
      if (member !== victim.address) continue;
      expect(ranDuringOutage.has(`down-0-${id}`)).toBe(false);
      expect(ranDuringOutage.has(`down-1-${id}`)).toBe(false);
    }

    // Restarted on the same port: a new incarnation, and its grains answer again, from it.
    const restarted = await h.restart(2);
    const newIncarnation = restarted.ready!['incarnation'] as string;
    expect(newIncarnation).not.toBe(oldIncarnation);
    for (const [i, caller] of [m0, m1].entries()) {
      let last: CallOutcome<Reply> | undefined;
      const until = Date.now() + 20_000;
      for (let attempt = 0; Date.now() < until; attempt++) {
        last = await caller.call<Reply>('slow', onVictim[0]!, 'hold', [`back-${i}-${attempt}`, 0], { timeoutMs: 3_000 });
        if (last.ok) break;
        expectNeverRanTyped(last.error, `back-${i}-${attempt}`);
      }
      expect(last?.ok, JSON.stringify(last)).toBe(true);
      expect((last as Ok<Reply>).value).toMatchObject({ member: victim.address, incarnation: newIncarnation });
    }
    const back = await m0.batch<Reply>(onVictim.map((id) => hold(id, `again-${id}`, 0)));
    for (const o of back) expect((o as Ok<Reply>).value, JSON.stringify(o)).toMatchObject({ member: victim.address, incarnation: newIncarnation });

    // Nothing ran twice, anywhere.
    await h.readEvents();
    expectAtMostOnce(h, new Set(h.execEvents().map((e) => e.callId)));
    expectAtMostOnce(
      h,
      [...m0Calls, ...m1Calls, ...lateCalls].map((c) => c.args![0] as string),
    );
  }, 90_000);

  it('retries an @Idempotent method whose member was killed mid-call once it is back, within the deadline; not a plain one', async () => {
    h = await MemberHarness.start(2);
    const [caller, victim] = h.members as [MemberProcess, MemberProcess];
    const oldIncarnation = victim.ready!['incarnation'] as string;
    const map = await placement(
      caller,
      'slow',
      Array.from({ length: 30 }, (_, n) => `i${n}`),
    );
    const [idemId, plainId] = idsOn(map, victim.address, 2) as [string, string];

    const timeoutMs = 30_000;
    const idem = caller.call<Reply>('slow', idemId, 'idem', ['idem-1', 1_000], { timeoutMs, waitMs: 60_000 });
    const plain = caller.call<Reply>('slow', plainId, 'hold', ['plain-1', 1_000], { timeoutMs, waitMs: 60_000 });
    await victim.waitForExec(['idem-1', 'plain-1']);
    await h.kill(1, 'SIGKILL');

    // the plain call may have run: its caller is told so, at once, and it is not repeated
    const plainOutcome = await plain;
    expect(plainOutcome).toMatchObject({ ok: false, error: { name: 'OutcomeUnknownError' } });

    const restarted = await h.restart(1);
    const newIncarnation = restarted.ready!['incarnation'] as string;
    const outcome = await idem;
    expect(outcome.ok, JSON.stringify(outcome)).toBe(true);
    expect((outcome as Ok<Reply>).value).toMatchObject({ member: victim.address, incarnation: newIncarnation });
    expect(outcome.elapsedMs).toBeLessThanOrEqual(timeoutMs + DEADLINE_SLACK_MS);

    // it ran twice — once per incarnation — which is what @Idempotent allows; the plain call once
    await h.readEvents();
    const runs = h.execEvents().filter((e) => e.callId === 'idem-1');
    expect(runs.map((e) => e.incarnation)).toEqual([oldIncarnation, newIncarnation]);
    expect(
      h
        .execEvents()
        .filter((e) => e.callId === 'plain-1')
        .map((e) => e.incarnation),
    ).toEqual([oldIncarnation]);
  }, 90_000);

  it('times out calls to a frozen (SIGSTOP) member at their deadlines, keeps serving the rest, and recovers on SIGCONT', async () => {
    h = await MemberHarness.start(3);
    const [caller, frozen, other] = h.members as [MemberProcess, MemberProcess, MemberProcess];
    const map = await placement(
      caller,
      'slow',
      Array.from({ length: 40 }, (_, n) => `f${n}`),
    );
    const onFrozen = idsOn(map, frozen.address, 3);
    const onOther = idsOn(map, other.address, 3);

    h.stop(1);
    const timeoutMs = 2_000;
    const stuck = await caller.batch<Reply>(onFrozen.map((id) => ({ kind: 'slow', identity: id, method: 'hold', args: [`frozen-${id}`, 0], timeoutMs })));
    for (const o of stuck) {
      // written to a member that never answered: it may have run (or may yet)
      expect(o, JSON.stringify(o)).toMatchObject({ ok: false, error: { name: 'GrainTimeoutError', neverRan: false } });
      expect(o.elapsedMs).toBeGreaterThanOrEqual(timeoutMs - 50);
      expect(o.elapsedMs).toBeLessThanOrEqual(timeoutMs + DEADLINE_SLACK_MS);
    }
    const meanwhile = await caller.batch<Reply>(
      onOther.map((id) => ({ kind: 'slow', identity: id, method: 'hold', args: [`meanwhile-${id}`, 0], timeoutMs: 10_000 })),
    );
    for (const o of meanwhile) expect(o, JSON.stringify(o)).toMatchObject({ ok: true, value: { member: other.address } });
    expect(frozen.execEvents().filter((e) => e.callId.startsWith('frozen-'))).toEqual([]); // it is frozen

    h.cont(1);
    const thawed = await caller.batch<Reply>(
      onFrozen.map((id) => ({ kind: 'slow', identity: id, method: 'hold', args: [`thawed-${id}`, 0], timeoutMs: 10_000 })),
    );
    for (const o of thawed)
      expect(o, JSON.stringify(o)).toMatchObject({ ok: true, value: { member: frozen.address, incarnation: frozen.ready!['incarnation'] } });
    // the calls that timed out were delivered late and may have run then — but once at most
    expectAtMostOnce(
      h,
      onFrozen.map((id) => `frozen-${id}`),
    );
  }, 60_000);
});
