import { afterEach, describe, expect, it } from 'vitest';
import {
  type Cluster,
  ClusterUnavailableError,
  type GrainClient,
  type GrainContext,
  GrainTimeoutError,
  HashIdentityLookup,
  InMemoryIdentityLookup,
  InvalidGrainCallError,
  OutcomeUnknownError,
  type TurnGuard,
} from 'nestjs-grains';
import { outcome, sleep, startCluster } from '../support/cluster.js';
import { startMembers } from '../support/in-process-cluster.js';

/**
 * Holes in deadlines, fencing and identities found by review (issue 8), each pinned by the
 * behaviour a caller sees. The fencing cases use the in-memory lookup with a turn guard the
 * test controls: the rule under test is the runtime's (fencing.ts); the Redis lease that
 * drives the guard in production is tested against a real redis-server in test/redis.
 */

/** Hash placement, leased by a guard the test switches. */
class GuardedHashLookup extends HashIdentityLookup {
  leaseValid = true;
  readonly turnGuard: TurnGuard = {
    canStart: () => this.leaseValid,
    canSettle: () => this.leaseValid,
  };
}

/** The in-memory lookup, leased by a guard the test switches. */
class GuardedLookup extends InMemoryIdentityLookup {
  leaseValid = true;
  roomToStart = true;
  readonly turnGuard: TurnGuard = {
    canStart: () => this.leaseValid && this.roomToStart,
    canSettle: () => this.leaseValid,
  };
}

const counts = { bodies: 0, targetRuns: 0, afterResume: [] as string[] };

class TargetGrain {
  ping(): string {
    counts.targetRuns++;
    return 'pong';
  }
}

/** The member's client of the target kind (not the grain's own), for the 'global' variants. */
const globalTargets: { client?: GrainClient<TargetGrain> } = {};

class CallerGrain {
  constructor(readonly ctx: GrainContext) {}
  /**
   * Waits `ms`, then calls the target: the call is made from this turn, through the grain's own
   * reference (`own`), or through the member's client (`global`: tracked after an await only
   * with callChains 'async-local-storage'; see test/cluster/call-chains.spec.ts).
   */
  async waitThenCall(ms: number, via: 'own' | 'global' = 'own'): Promise<string> {
    counts.bodies++;
    await sleep(ms);
    const targets = via === 'own' ? this.ctx.client<TargetGrain>('target') : globalTargets.client!;
    const result = await outcome(targets.get(this.ctx.identity).ping());
    counts.afterResume.push(result.ok ? 'called' : (result.error as Error).name);
    return 'done';
  }
  body(): string {
    counts.bodies++;
    return 'ran';
  }
  async sleepFor(ms: number): Promise<string> {
    await sleep(ms);
    return 'late';
  }
}

describe('issue 8 holes: deadlines, fencing, identities', () => {
  let cluster: Cluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
    counts.bodies = 0;
    counts.targetRuns = 0;
    counts.afterResume = [];
  });

  async function start(options: Parameters<typeof startCluster>[1] = {}) {
    const started = await startCluster(
      [
        { name: 'caller', grainClass: CallerGrain },
        { name: 'target', grainClass: TargetGrain as never },
      ],
      options,
    );
    cluster = started.cluster;
    globalTargets.client = cluster.client<TargetGrain>('target');
    return cluster.client<CallerGrain>('caller');
  }

  // Hole 4 -----------------------------------------------------------------------------------

  it('refuses identities that are not well-formed, or too long, before anything runs', async () => {
    const callers = await start({ maxIdentityBytes: 64 });
    for (const identity of ['lone \uD800 surrogate', 'trailing \uDC00', 'x'.repeat(65), 'é'.repeat(33)]) {
      expect(() => callers.get(identity)).toThrow(InvalidGrainCallError);
      await expect(cluster!.request('caller', identity, 'body', [])).rejects.toBeInstanceOf(InvalidGrainCallError);
    }
    expect(() => callers.get('\uD800')).toThrow(/well-formed/);
    expect(() => callers.get('x'.repeat(65))).toThrow(/at most 64 UTF-8 bytes, got 65/);
    expect(await callers.get('x'.repeat(64)).body()).toBe('ran');
    expect(await callers.get('\uD83D\uDE00 a pair is fine').body()).toBe('ran');
    expect(counts.bodies).toBe(2);
    expect(cluster!.stats().activated).toBe(2);
  });

  it('limits identities to 1 KiB by default', async () => {
    const callers = await start();
    expect(() => callers.get('x'.repeat(1025))).toThrow(/at most 1024 UTF-8 bytes/);
    expect(await callers.get('x'.repeat(1024)).body()).toBe('ran');
  });

  // Hole 6 -----------------------------------------------------------------------------------

  it('times out the caller of a turn still running when its activation is force-stopped', async () => {
    const callers = await start({ drainTimeout: 50 });
    const at = Date.now();
    const call = outcome(callers.get('slow', { timeout: 300 }).sleepFor(1_500));
    // the turn is running; shutting down past the drain timeout force-stops the activation
    await sleep(20);
    const stopping = cluster!.shutdown();
    const result = await call;
    expect(result.ok).toBe(false);
    expect((result as { error: unknown }).error).toBeInstanceOf(GrainTimeoutError);
    expect(Date.now() - at).toBeLessThan(1_000); // at its 300 ms deadline, not when the turn finally ended (1.5 s)
    await stopping;
    cluster = undefined;
  });

  // Hole 7 -----------------------------------------------------------------------------------

  it.each([
    ['references', 'own'],
    ['async-local-storage', 'own'],
    ['async-local-storage', 'global'],
  ] as const)("lets a poisoned activation's hung turn call nothing once it resumes (callChains: %s, through the %s client)", async (callChains, via) => {
    const callers = await start({ hangTimeout: 30, callChains });
    const call = outcome(callers.get('p', { timeout: 30 }).waitThenCall(300, via));
    const result = await call;
    expect((result as { error: unknown }).error).toBeInstanceOf(GrainTimeoutError);
    await sleep(400); // poisoned at ~60 ms; the turn resumes at ~300 ms and tries its call
    expect(cluster!.stats().poisoned).toBe(1);
    expect(counts.afterResume).toEqual(['ClusterUnavailableError']);
    expect(counts.targetRuns).toBe(0);
  });

  // Hole 8 -----------------------------------------------------------------------------------

  it.each([
    ['references', 'own'],
    ['async-local-storage', 'own'],
    ['async-local-storage', 'global'],
  ] as const)(
    'refuses an outgoing call from a turn whose lease lapsed quietly (no fence yet) (callChains: %s, through the %s client)',
    async (callChains, via) => {
      // the caller's member is leased (its guard is the test's); the target lives on another member
      const lookup = new GuardedHashLookup();
      const pair = await startMembers([
        { kinds: [{ name: 'caller', grainClass: CallerGrain }], options: { identityLookup: lookup, callChains } },
        { kinds: [{ name: 'target', grainClass: TargetGrain as never }] },
      ]);
      try {
        const targets = pair.members[0]!.client<TargetGrain>('target');
        globalTargets.client = targets;
        expect(await targets.get('warm').ping()).toBe('pong'); // the other member serves the target
        const call = outcome(pair.members[0]!.client<CallerGrain>('caller').get('t').waitThenCall(50, via));
        await sleep(20);
        lookup.leaseValid = false; // the lease lapses while the turn awaits; nothing fenced it
        const result = await call;
        expect(counts.afterResume).toEqual(['ClusterUnavailableError']);
        expect(counts.targetRuns).toBe(1); // the warm-up call only
        // and the turn's own reply cannot be vouched for
        expect((result as { error: unknown }).error).toBeInstanceOf(OutcomeUnknownError);
      } finally {
        await pair.shutdown();
      }
    },
  );

  // Hole 13 ----------------------------------------------------------------------------------

  it('never runs a method body when the lease has no room to start its turn', async () => {
    const lookup = new GuardedLookup();
    const callers = await start({ identityLookup: lookup, requestTimeout: 300 });
    expect(await callers.get('warm').body()).toBe('ran');
    lookup.roomToStart = false;
    const result = await outcome(callers.get('cold').body());
    expect(result.ok).toBe(false);
    expect((result as { error: unknown }).error).toBeInstanceOf(Error);
    expect((result as { error: unknown }).error).not.toBeInstanceOf(OutcomeUnknownError); // it provably never ran
    expect(counts.bodies).toBe(1);
    expect([ClusterUnavailableError, GrainTimeoutError].some((type) => (result as { error: unknown }).error instanceof type)).toBe(true);
  });
});
