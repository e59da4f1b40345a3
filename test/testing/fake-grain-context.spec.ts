import { describe, expect, it } from 'vitest';
import { type GrainContext, GrainConfigurationError, type GrainTimer, type OnGrainActivate } from 'nestjs-grains';
import { createGrainContext, FakeGrainContext } from '../../lib/testing/index.js';

/** A store that refuses writes of an older epoch, as docs/testing.md's example grain expects. */
class Store {
  readonly rows = new Map<string, { balance: number; epoch: number }>();
  save(id: string, balance: number, epoch: number): boolean {
    const row = this.rows.get(id);
    if (row !== undefined && row.epoch > epoch) return false;
    this.rows.set(id, { balance, epoch });
    return true;
  }
}

class AccountGrain implements OnGrainActivate {
  private balance = 0;
  readonly audits: number[] = [];
  private auditTimer: GrainTimer | undefined;
  constructor(
    private readonly store: Store,
    private readonly ctx: GrainContext,
  ) {}
  onGrainActivate(): void {
    this.balance = this.store.rows.get(this.ctx.identity)?.balance ?? 0;
    this.auditTimer = this.ctx.startTimer(() => this.audits.push(this.balance), { due: '1m', period: '1m' });
    this.ctx.startTimer(() => this.audits.push(-1), { due: '30s' });
  }
  deposit(amount: number): number {
    if (!this.store.save(this.ctx.identity, this.balance + amount, this.ctx.epoch)) {
      this.ctx.deactivate(); // stale: the next call activates afresh
      throw new Error('stale activation');
    }
    return (this.balance += amount);
  }
  stopAudits(): void {
    this.auditTimer?.stop();
  }
  async slow(): Promise<string> {
    await new Promise<void>((resolve) => this.ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
    return `gave up: ${String(this.ctx.signal.reason)}`;
  }
}

describe('createGrainContext: a grain class tested alone', () => {
  it('gives the grain its identity, epoch and the rest, with defaults', () => {
    const ctx = createGrainContext({ kind: 'account', identity: 'a1', epoch: 3 });
    expect(ctx).toBeInstanceOf(FakeGrainContext);
    expect(ctx).toMatchObject({ kind: 'account', identity: 'a1', epoch: 3, memberId: 'test-member', activationId: 'test-member:1' });
    expect(createGrainContext()).toMatchObject({ kind: 'test', identity: 'test', epoch: 1 });
    expect(ctx.signal.aborted).toBe(false);
  });

  it('lets a test construct the grain and call it like a plain class', () => {
    const store = new Store();
    const grain = new AccountGrain(store, createGrainContext({ identity: 'a1', epoch: 2 }));
    grain.onGrainActivate();
    expect(grain.deposit(5)).toBe(5);
    expect(store.rows.get('a1')).toEqual({ balance: 5, epoch: 2 });
  });

  it('records deactivate(), and stops the timers as the runtime does', () => {
    const store = new Store();
    store.rows.set('a1', { balance: 0, epoch: 9 });
    const ctx = createGrainContext({ identity: 'a1', epoch: 2 });
    const grain = new AccountGrain(store, ctx);
    grain.onGrainActivate();
    expect(ctx.deactivated).toBe(false);
    expect(() => grain.deposit(5)).toThrow('stale activation');
    expect(ctx.deactivated).toBe(true);
    expect(ctx.deactivations).toBe(1);
    expect(ctx.activeTimers).toEqual([]);
    expect(ctx.startTimer(() => undefined, { due: 1 }).active).toBe(false); // timers started after it start stopped
  });

  it('runs the timer ticks that fall due as virtual time advances, in order', async () => {
    const ctx = createGrainContext({ identity: 'a1' });
    const grain = new AccountGrain(new Store(), ctx);
    grain.onGrainActivate();
    expect(ctx.timers.map((t) => [t.dueMs, t.periodMs])).toEqual([
      [60_000, 60_000],
      [30_000, undefined],
    ]);
    await ctx.advance('29s');
    expect(grain.audits).toEqual([]);
    await ctx.advance('1s');
    expect(grain.audits).toEqual([-1]); // the one-shot timer, now stopped
    expect(ctx.timers[1]!.active).toBe(false);
    grain.deposit(7);
    await ctx.advance('2m');
    expect(grain.audits).toEqual([-1, 7, 7]);
    expect(ctx.now).toBe(150_000);
    grain.stopAudits();
    await ctx.advance('10m');
    expect(grain.audits).toEqual([-1, 7, 7]);
    expect(ctx.timers[0]!.ticks).toBe(2);
  });

  it('fires one tick on demand, and refuses to fire a stopped timer', async () => {
    const ctx = createGrainContext();
    const ticks: number[] = [];
    const timer = ctx.startTimer(() => ticks.push(ticks.length), { due: '1h' });
    await timer.fire();
    expect(ticks).toEqual([0]);
    expect(timer.active).toBe(false);
    await expect(timer.fire()).rejects.toThrow('stopped');
  });

  it('surfaces what a tick threw, and checks durations as the runtime does', async () => {
    const ctx = createGrainContext();
    ctx.startTimer(() => Promise.reject(new Error('tick failed')), { due: 10 });
    await expect(ctx.advance(10)).rejects.toThrow('tick failed');
    expect(() => ctx.startTimer(() => undefined, { due: 'soon' as never })).toThrow(GrainConfigurationError);
  });

  it('aborts ctx.signal when the test says the caller gave up', async () => {
    const ctx = createGrainContext();
    const grain = new AccountGrain(new Store(), ctx);
    const answer = grain.slow();
    ctx.abort('deadline');
    expect(await answer).toBe('gave up: deadline');
  });
});
