import { afterEach, describe, expect, it } from 'vitest';
import { type Cluster, ClusterShuttingDownError, GrainActivationError, type GrainContext, type GrainTimer } from 'nestjs-grains';
import { eventually, outcome, sleep, startCluster } from '../support/cluster.js';

const events: string[] = [];

class LifeGrain {
  private timer: GrainTimer | undefined;
  ticks = 0;
  tickOverlaps = 0;
  private busy = false;
  constructor(readonly ctx: GrainContext) {
    events.push(`construct ${ctx.identity}`);
  }
  async onGrainActivate(): Promise<void> {
    await sleep(5);
    if (this.ctx.identity.startsWith('fail')) throw Object.assign(new Error('cannot load'), { code: 'LOAD' });
    if (this.ctx.identity.startsWith('timerfail')) {
      this.ctx.startTimer(() => events.push('tick of a failed activation'), { due: 10, period: 10 });
      throw new Error('failed after starting a timer');
    }
    events.push(`activate ${this.ctx.identity}`);
  }
  async onGrainDeactivate(reason: string): Promise<void> {
    await sleep(5);
    events.push(`deactivate ${this.ctx.identity} ${reason}`);
  }
  info() {
    return { activationId: this.ctx.activationId, epoch: this.ctx.epoch, memberId: this.ctx.memberId, kind: this.ctx.kind };
  }
  async slow(ms: number): Promise<string> {
    await sleep(ms);
    events.push(`slow done ${this.ctx.identity}`);
    return 'slow';
  }
  leave(): void {
    this.ctx.deactivate();
  }
  startTicking(periodMs: number, workMs: number): void {
    this.timer = this.ctx.startTimer(
      async () => {
        if (this.busy) this.tickOverlaps++;
        this.busy = true;
        this.ticks++;
        await sleep(workMs);
        this.busy = false;
      },
      { due: periodMs, period: periodMs },
    );
  }
  async busyCall(ms: number): Promise<void> {
    if (this.busy) this.tickOverlaps++;
    this.busy = true;
    await sleep(ms);
    this.busy = false;
  }
  stopTicking(): void {
    this.timer?.stop();
  }
  tickStats() {
    return { ticks: this.ticks, overlaps: this.tickOverlaps, active: this.timer?.active };
  }
}

describe('activation lifecycle', () => {
  let cluster: Cluster;
  afterEach(async () => cluster?.shutdown());

  it('constructs once, runs onGrainActivate before the first call, and exposes the context', async () => {
    events.length = 0;
    ({ cluster } = await startCluster([{ name: 'life', grainClass: LifeGrain }], { memberId: 'm1' }));
    const grain = cluster.client<LifeGrain>('life').get('a');
    const [one, two] = await Promise.all([grain.info(), grain.info()]);
    expect(one).toEqual(two);
    expect(one).toMatchObject({ memberId: 'm1', kind: 'life' });
    expect(one.epoch).toBeGreaterThan(0);
    expect(events).toEqual(['construct a', 'activate a']);
  });

  it('fails the triggering call with GrainActivationError and keeps nothing when onGrainActivate throws', async () => {
    events.length = 0;
    ({ cluster } = await startCluster([{ name: 'life', grainClass: LifeGrain }]));
    const grain = cluster.client<LifeGrain>('life').get('fail-1');
    const [first, second] = await Promise.all([outcome(grain.info()), outcome(grain.info())]);
    for (const result of [first, second]) {
      expect((result as { error: unknown }).error).toBeInstanceOf(GrainActivationError);
      expect((result as { error: GrainActivationError }).error.message).toContain('cannot load');
    }
    expect(cluster.stats().activations).toBe(0);
    // The next call tries again (and fails again), constructing a new instance.
    await outcome(grain.info());
    expect(events.filter((e) => e === 'construct fail-1')).toHaveLength(2);
  });

  it('fails every waiting caller once when the constructor throws, without retrying per caller', async () => {
    class BrokenGrain {
      static constructed = 0;
      constructor() {
        BrokenGrain.constructed++;
        throw new TypeError('broken constructor');
      }
      ping(): string {
        return 'pong';
      }
    }
    ({ cluster } = await startCluster([{ name: 'broken', grainClass: BrokenGrain as never }]));
    const grain = cluster.client<BrokenGrain>('broken').get('b');
    const results = await Promise.all(Array.from({ length: 50 }, () => outcome(grain.ping())));
    for (const r of results)
      expect((r as { error: GrainActivationError }).error).toMatchObject({ name: 'GrainActivationError', reason: 'TypeError: broken constructor' });
    expect(BrokenGrain.constructed).toBe(1);
    expect(cluster.stats().activations).toBe(0);
  });

  it('stops timers started by an activation that then failed', async () => {
    events.length = 0;
    ({ cluster } = await startCluster([{ name: 'life', grainClass: LifeGrain }]));
    await outcome(cluster.client<LifeGrain>('life').get('timerfail').info());
    await sleep(60);
    expect(events).not.toContain('tick of a failed activation');
  });

  it('deactivates an idle activation (hook runs) and re-activates on the next call with a higher epoch', async () => {
    events.length = 0;
    ({ cluster } = await startCluster([{ name: 'life', grainClass: LifeGrain, idleTimeout: 100 }]));
    const grain = cluster.client<LifeGrain>('life').get('idle');
    const first = await grain.info();
    expect(await eventually(() => events.includes('deactivate idle idle'), 1_000)).toBe(true);
    expect(cluster.stats().activations).toBe(0);
    const second = await grain.info();
    expect(second.activationId).not.toBe(first.activationId);
    expect(second.epoch).toBeGreaterThan(first.epoch);
  });

  it('does not deactivate an activation that keeps getting calls', async () => {
    ({ cluster } = await startCluster([{ name: 'life', grainClass: LifeGrain, idleTimeout: 100 }]));
    const grain = cluster.client<LifeGrain>('life').get('busy');
    const first = await grain.info();
    for (let i = 0; i < 10; i++) {
      await sleep(30);
      expect((await grain.info()).activationId).toBe(first.activationId);
    }
  });

  it('deactivates on ctx.deactivate() after the calls already queued', async () => {
    events.length = 0;
    ({ cluster } = await startCluster([{ name: 'life', grainClass: LifeGrain }]));
    const grain = cluster.client<LifeGrain>('life').get('leaver');
    const first = await grain.info();
    // slow runs; leave and the second slow wait behind it; leave's turn asks for deactivation.
    await Promise.all([grain.slow(20), grain.leave(), grain.slow(10)]);
    await eventually(() => events.includes('deactivate leaver requested'));
    expect(events).toEqual(['construct leaver', 'activate leaver', 'slow done leaver', 'slow done leaver', 'deactivate leaver requested']);
    const second = await grain.info();
    expect(second.activationId).not.toBe(first.activationId);
  });

  it('runs a call that arrives during deactivation on a fresh activation, after the hook', async () => {
    events.length = 0;
    ({ cluster } = await startCluster([{ name: 'life', grainClass: LifeGrain }]));
    const grain = cluster.client<LifeGrain>('life').get('d');
    const first = await grain.info();
    await grain.leave(); // hook now runs (it sleeps 5 ms)
    const during = await grain.info();
    expect(during.activationId).not.toBe(first.activationId);
    expect(events.indexOf('deactivate d requested')).toBeLessThan(events.lastIndexOf('activate d'));
  });

  it('runs timer ticks as turns, never beside a call, and stops them with the activation', async () => {
    ({ cluster } = await startCluster([{ name: 'life', grainClass: LifeGrain }]));
    const grain = cluster.client<LifeGrain>('life').get('t');
    await grain.startTicking(10, 15);
    for (let i = 0; i < 10; i++) await grain.busyCall(7);
    await sleep(50);
    const stats = await grain.tickStats();
    expect(stats.ticks).toBeGreaterThan(2);
    expect(stats.overlaps).toBe(0);
    await grain.stopTicking();
    const stopped = (await grain.tickStats()).ticks;
    await sleep(60);
    expect((await grain.tickStats()).ticks).toBe(stopped);
    expect((await grain.tickStats()).active).toBe(false);
  });

  it('stops timers when the activation deactivates', async () => {
    ({ cluster } = await startCluster([{ name: 'life', grainClass: LifeGrain }]));
    const grain = cluster.client<LifeGrain>('life').get('t2');
    await grain.startTicking(10, 0);
    await sleep(40);
    await grain.leave();
    await eventually(() => cluster.stats().activations === 0);
    const before = cluster.stats().activated;
    await sleep(60);
    // A tick of the old activation would have re-activated nothing, and must not run at all.
    expect(cluster.stats().activated).toBe(before);
    expect(cluster.stats().activations).toBe(0);
  });
});

describe('shutdown', () => {
  it('runs queued calls and every onGrainDeactivate, then refuses new calls with ClusterShuttingDownError', async () => {
    events.length = 0;
    const { cluster } = await startCluster([{ name: 'life', grainClass: LifeGrain }]);
    const grains = cluster.client<LifeGrain>('life');
    await Promise.all(['s1', 's2', 's3'].map((id) => grains.get(id).info()));
    const inFlight = grains.get('s1').slow(30);
    const stopping = cluster.shutdown();
    const refused = await outcome(grains.get('s4').info());
    expect((refused as { error: unknown }).error).toBeInstanceOf(ClusterShuttingDownError);
    expect(await inFlight).toBe('slow');
    await stopping;
    expect(events.filter((e) => e.startsWith('deactivate')).sort()).toEqual(['deactivate s1 shutdown', 'deactivate s2 shutdown', 'deactivate s3 shutdown']);
    const after = await outcome(grains.get('s1').info());
    expect((after as { error: unknown }).error).toMatchObject({ code: 'GRAIN_CLUSTER_SHUTTING_DOWN' });
  });

  it('gives up on activations that do not drain within drainTimeout', async () => {
    const { cluster, logger } = await startCluster([{ name: 'life', grainClass: LifeGrain }], { drainTimeout: 100 });
    const grains = cluster.client<LifeGrain>('life');
    await grains.get('stuck').info();
    const running = outcome(grains.get('stuck').slow(2_000));
    const queued = outcome(grains.get('stuck').info());
    const started = Date.now();
    await cluster.shutdown();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(((await queued) as { error: unknown }).error).toBeInstanceOf(ClusterShuttingDownError);
    expect(logger.messages('warn').join('\n')).toContain('did not finish within drainTimeout');
    void running;
  });
});
