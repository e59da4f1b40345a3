import { afterEach, describe, expect, it } from 'vitest';
import type { Cluster, GrainContext } from 'nestjs-grains';
import { startCluster } from '../support/cluster.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Reads, awaits, then writes: loses updates unless calls never overlap. */
class CounterGrain {
  value = 0;
  inFlight = 0;
  maxInFlight = 0;
  constructor(readonly ctx: GrainContext) {}
  async increment(): Promise<number> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const read = this.value;
    await tick();
    this.value = read + 1;
    this.inFlight--;
    return this.value;
  }
  async peek(): Promise<number> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await tick();
    this.inFlight--;
    return this.value;
  }
  stats() {
    return { value: this.value, maxInFlight: this.maxInFlight };
  }
}

/** Counts readers and writers in flight, and any overlap of the two. */
class GuardedGrain {
  private readers = 0;
  private writing = false;
  private violations = 0;
  private maxReaders = 0;
  constructor(readonly ctx: GrainContext) {}
  async write(): Promise<void> {
    if (this.readers > 0 || this.writing) this.violations++;
    this.writing = true;
    await tick();
    this.writing = false;
  }
  async read(): Promise<void> {
    if (this.writing) this.violations++;
    this.readers++;
    this.maxReaders = Math.max(this.maxReaders, this.readers);
    await tick();
    this.readers--;
  }
  seen() {
    return { violations: this.violations, maxReaders: this.maxReaders };
  }
}

/** Records the order in which calls start. */
class LogGrain {
  readonly seen: string[] = [];
  constructor(readonly ctx: GrainContext) {}
  async append(entry: string): Promise<void> {
    this.seen.push(entry);
    await tick();
  }
  list(): string[] {
    return this.seen;
  }
}

describe('turn-based execution', () => {
  let cluster: Cluster;
  afterEach(async () => cluster?.shutdown());

  it('runs one call at a time: 10,000 concurrent read-await-write calls lose no update', async () => {
    ({ cluster } = await startCluster([{ name: 'counter', grainClass: CounterGrain }], { maxQueueLength: 20_000 }));
    const counter = cluster.client<CounterGrain>('counter').get('c1');
    const results = await Promise.all(Array.from({ length: 10_000 }, () => counter.increment()));
    expect(await counter.stats()).toEqual({ value: 10_000, maxInFlight: 1 });
    // Every call saw a distinct value: no two read the same state.
    expect(new Set(results).size).toBe(10_000);
  });

  it('lets @Interleave() methods run beside each other', async () => {
    ({ cluster } = await startCluster([{ name: 'counter', grainClass: CounterGrain, interleavedMethods: ['peek'] }]));
    const counter = cluster.client<CounterGrain>('counter').get('c2');
    await Promise.all(Array.from({ length: 100 }, () => counter.peek()));
    expect((await counter.stats()).maxInFlight).toBeGreaterThan(1);
  });

  it('never runs an interleaved call beside an exclusive turn', async () => {
    ({ cluster } = await startCluster([{ name: 'guarded', grainClass: GuardedGrain, interleavedMethods: ['read'] }]));
    const grain = cluster.client<GuardedGrain>('guarded').get('c3');
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 300; i++) calls.push(i % 3 === 0 ? grain.write() : grain.read());
    await Promise.all(calls);
    const seen = await grain.seen();
    expect(seen.violations).toBe(0);
    expect(seen.maxReaders).toBeGreaterThan(1); // readers did overlap each other
  });

  it('lets every method of a kind marked interleave run beside the others', async () => {
    ({ cluster } = await startCluster([{ name: 'counter', grainClass: CounterGrain, interleave: true }]));
    const counter = cluster.client<CounterGrain>('counter').get('c4');
    await Promise.all(Array.from({ length: 100 }, () => counter.increment()));
    const stats = await counter.stats();
    expect(stats.maxInFlight).toBeGreaterThan(1);
    expect(stats.value).toBeLessThan(100); // lost updates prove the calls really overlapped
  });

  it('starts calls from one caller in the order they were made', async () => {
    ({ cluster } = await startCluster([{ name: 'log', grainClass: LogGrain }]));
    const log = cluster.client<LogGrain>('log').get('l1');
    const sent = Array.from({ length: 500 }, (_, i) => `e${i}`);
    await Promise.all(sent.map((entry) => log.append(entry)));
    expect(await log.list()).toEqual(sent);
  });

  it('runs different grains concurrently', async () => {
    ({ cluster } = await startCluster([{ name: 'counter', grainClass: CounterGrain }]));
    const counters = cluster.client<CounterGrain>('counter');
    const ids = Array.from({ length: 50 }, (_, i) => `g${i}`);
    await Promise.all(ids.flatMap((id) => Array.from({ length: 20 }, () => counters.get(id).increment())));
    for (const id of ids) expect(await counters.get(id).stats()).toEqual({ value: 20, maxInFlight: 1 });
  });
});
