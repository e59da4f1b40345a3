import { afterEach, describe, expect, it } from 'vitest';
import { type Cluster, GrainCallAbortedError, type GrainContext, GrainTimeoutError } from 'nestjs-grains';
import { eventually, outcome, sleep, startCluster } from '../support/cluster.js';

const never = new Promise<never>(() => {});

class SlowGrain {
  static runs = 0;
  static aborted = 0;
  static finishedAfterPoison = 0;
  constructor(readonly ctx: GrainContext) {}
  async wait(ms: number): Promise<string> {
    SlowGrain.runs++;
    await sleep(ms);
    return 'done';
  }
  /** Waits until its caller gives up, as a well-behaved grain does. */
  async waitForAbort(): Promise<void> {
    await new Promise<void>((resolve) => this.ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
    SlowGrain.aborted++;
  }
  /** Never settles. */
  async hang(): Promise<void> {
    await never;
  }
  /** Runs long past any deadline, then ends. */
  async overrun(ms: number): Promise<void> {
    await sleep(ms);
    SlowGrain.finishedAfterPoison++;
  }
  whoAmI(): string {
    return this.ctx.activationId;
  }
  signalAborted(): boolean {
    return this.ctx.signal.aborted;
  }
}

describe('deadlines', () => {
  let cluster: Cluster;
  afterEach(async () => cluster?.shutdown());

  it('times a running call out at its deadline with GrainTimeoutError', async () => {
    ({ cluster } = await startCluster([{ name: 'slow', grainClass: SlowGrain }], { requestTimeout: '5s' }));
    const started = Date.now();
    const result = await outcome(cluster.client<SlowGrain>('slow').get('a', { timeout: 100 }).wait(400));
    const waited = Date.now() - started;
    expect(result.ok).toBe(false);
    const error = (result as { error: GrainTimeoutError }).error;
    expect(error).toBeInstanceOf(GrainTimeoutError);
    expect(error).toMatchObject({ code: 'GRAIN_TIMEOUT', kind: 'slow', identity: 'a', method: 'wait', timeoutMs: 100, neverRan: false });
    expect(waited).toBeGreaterThanOrEqual(95);
    expect(waited).toBeLessThan(380);
  });

  it('uses the default requestTimeout when the call gives none', async () => {
    ({ cluster } = await startCluster([{ name: 'slow', grainClass: SlowGrain }], { requestTimeout: 80 }));
    const result = await outcome(cluster.client<SlowGrain>('slow').get('a').wait(400));
    expect((result as { error: GrainTimeoutError }).error).toMatchObject({ timeoutMs: 80 });
  });

  it('reports a call that timed out while queued as never run, and never runs it', async () => {
    ({ cluster } = await startCluster([{ name: 'slow', grainClass: SlowGrain }]));
    const grain = cluster.client<SlowGrain>('slow');
    SlowGrain.runs = 0;
    const first = grain.get('q').wait(300);
    const queued = await outcome(grain.get('q', { timeout: 50 }).wait(0));
    expect((queued as { error: GrainTimeoutError }).error).toMatchObject({ name: 'GrainTimeoutError', neverRan: true });
    await first;
    await sleep(20);
    expect(SlowGrain.runs).toBe(1);
  });

  it('aborts ctx.signal when the caller times out', async () => {
    ({ cluster } = await startCluster([{ name: 'slow', grainClass: SlowGrain }]));
    SlowGrain.aborted = 0;
    const result = await outcome(cluster.client<SlowGrain>('slow').get('s', { timeout: 50 }).waitForAbort());
    expect(result.ok).toBe(false);
    expect(await eventually(() => SlowGrain.aborted === 1)).toBe(true);
    // The next call sees a fresh, unaborted signal.
    expect(await cluster.client<SlowGrain>('slow').get('s').signalAborted()).toBe(false);
  });

  it('answers a call aborted by the caller with GrainCallAbortedError', async () => {
    ({ cluster } = await startCluster([{ name: 'slow', grainClass: SlowGrain }]));
    const grain = cluster.client<SlowGrain>('slow');
    const controller = new AbortController();
    const running = outcome(grain.get('x', { signal: controller.signal }).wait(500));
    const queued = outcome(grain.get('x', { signal: controller.signal }).wait(0));
    await sleep(20);
    controller.abort();
    expect(((await running) as { error: unknown }).error).toMatchObject({ name: 'GrainCallAbortedError', neverRan: false });
    expect(((await queued) as { error: unknown }).error).toMatchObject({ name: 'GrainCallAbortedError', neverRan: true });
    const already = await outcome(grain.get('x', { signal: controller.signal }).wait(0));
    expect((already as { error: unknown }).error).toBeInstanceOf(GrainCallAbortedError);
  });

  it('poisons an activation whose turn outlives its deadline by hangTimeout; the next call gets a fresh one', async () => {
    ({ cluster } = await startCluster([{ name: 'slow', grainClass: SlowGrain }], { hangTimeout: 100 }));
    const grain = cluster.client<SlowGrain>('slow');
    const before = await grain.get('p').whoAmI();
    const hung = outcome(grain.get('p', { timeout: 50 }).hang());
    // Queued behind the hung turn: it never ran there, so it is moved to the fresh activation.
    const queuedBehind = grain.get('p', { timeout: 2_000 }).whoAmI();
    expect(((await hung) as { error: unknown }).error).toMatchObject({ name: 'GrainTimeoutError', neverRan: false });
    const after = await queuedBehind;
    expect(after).not.toBe(before);
    expect(await grain.get('p').whoAmI()).toBe(after);
    expect(cluster.stats().poisoned).toBe(1);
  });

  it('never starts a turn on a poisoned activation, even when its hung turn ends later', async () => {
    ({ cluster } = await startCluster([{ name: 'slow', grainClass: SlowGrain }], { hangTimeout: 50 }));
    const grain = cluster.client<SlowGrain>('slow');
    SlowGrain.finishedAfterPoison = 0;
    const first = await grain.get('o').whoAmI();
    const overrun = outcome(grain.get('o', { timeout: 30 }).overrun(250));
    await overrun;
    await eventually(() => cluster.stats().poisoned === 1);
    const second = await grain.get('o').whoAmI();
    expect(second).not.toBe(first);
    await sleep(300); // the old turn ends now; the old activation must not wake up
    expect(SlowGrain.finishedAfterPoison).toBe(1);
    expect(await grain.get('o').whoAmI()).toBe(second);
    expect(cluster.stats().activations).toBe(1);
  });
});
