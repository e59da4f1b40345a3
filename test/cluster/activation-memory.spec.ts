import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { type Cluster, type GrainContext, type IdentityLookup, InMemoryIdentityLookup, type LookupMember, type Pid } from 'nestjs-grains';
import { eventually, outcome, sleep, startCluster } from '../support/cluster.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/**
 * What the memory work on activations must not cost (bench/: ~280 B per idle activation):
 * an activation is the link of its exclusive turns, so a call's link and chain name whole
 * activations; once a turn ended they must let go (Call.detach), or anything made in a turn
 * that lives on (with AsyncLocalStorage it keeps the turn's call) would keep deactivated
 * grains alive. And a local Pid stays a plain record a lookup may copy.
 * (Both found by a review, each failing before its fix.)
 */

const refs: { caller?: WeakRef<Caller>; callee?: WeakRef<Callee> } = {};
const intervals: NodeJS.Timeout[] = [];
let keepSomething = true;

class Callee {
  readonly state = new Array(100_000).fill(7);
  constructor(readonly ctx: GrainContext) {
    refs.callee = new WeakRef(this);
  }
  keep(): string {
    // e.g. a client, pool or subscription lazily made in the first turn that needs it
    if (keepSomething) {
      const timer = setInterval(() => {}, 1_000_000);
      timer.unref();
      intervals.push(timer);
    }
    return 'kept';
  }
}

class Caller {
  readonly state = new Array(100_000).fill(7);
  constructor(readonly ctx: GrainContext) {
    refs.caller = new WeakRef(this);
  }
  async go(): Promise<string> {
    return this.ctx.client<Callee>('callee').get('one').keep();
  }
}

async function collect(): Promise<void> {
  await sleep(20);
  for (let i = 0; i < 5; i++) {
    gc();
    await sleep(10);
  }
}

describe('an ended turn lets go of the activations its call named', () => {
  let cluster: Cluster | undefined;
  afterEach(async () => {
    for (const t of intervals.splice(0)) clearInterval(t);
    await cluster?.shutdown();
    cluster = undefined;
    keepSomething = true;
  });

  async function start() {
    ({ cluster } = await startCluster(
      [
        { name: 'caller', grainClass: Caller },
        { name: 'callee', grainClass: Callee },
      ],
      { callChains: 'async-local-storage' },
    ));
    expect(await cluster.client<Caller>('caller').get('a').go()).toBe('kept');
  }

  /** Start, deactivate `which`, wait until it is gone, collect: its grain instance must be unreachable. */
  async function deactivateAndCollect(which: 'caller' | 'callee'): Promise<void> {
    await start();
    refs[which]!.deref()!.ctx.deactivate();
    expect(await eventually(() => cluster!.stats().activations === 1)).toBe(true);
    await collect();
    expect(refs[which]!.deref()).toBeUndefined();
  }

  it('control: with nothing kept from the callee turn, the deactivated caller is collected', async () => {
    keepSomething = false;
    await deactivateAndCollect('caller');
  });

  it('a deactivated caller (and its grain instance) is collectable once its call settled', async () => {
    await deactivateAndCollect('caller');
  });

  it('a deactivated callee (and its grain instance) is collectable although a resource made in its turn lives on', async () => {
    await deactivateAndCollect('callee');
  });
});

class Echo {
  constructor(readonly ctx: GrainContext) {}
  hi(): string {
    return `hi ${this.ctx.identity}`;
  }
}

/** Wraps the in-memory lookup and hands the router a copy of each Pid (as a caching or logging lookup would). */
class CopyingLookup implements IdentityLookup {
  readonly name = 'copying';
  readonly inner = new InMemoryIdentityLookup();
  seen: Pid[] = [];
  async setup(member: LookupMember): Promise<void> {
    await this.inner.setup(member);
  }
  async get(kind: string, identity: string): Promise<Pid> {
    const pid = await this.inner.get(kind, identity);
    this.seen.push(pid);
    return { ...pid };
  }
  remove(): void {}
  async shutdown(): Promise<void> {}
}

describe('a local Pid', () => {
  let cluster: Cluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it('a copy of a local Pid ({ ...pid }, rest without process) keeps its address, and a lookup may return it', async () => {
    const lookup = new CopyingLookup();
    ({ cluster } = await startCluster([{ name: 'echo', grainClass: Echo }], { identityLookup: lookup }));
    const result = await outcome(cluster.client<Echo>('echo').get('a').hi());
    const pid = lookup.seen[0]!;
    expect(typeof pid.memberId).toBe('string');
    expect(typeof pid.id).toBe('string');
    const copy = { ...pid };
    const { process: _process, ...address } = pid;
    expect(Object.keys(pid).sort()).toEqual(['id', 'incarnation', 'memberId', 'process']);
    expect(copy.memberId).toBe(pid.memberId);
    expect(copy.id).toBe(pid.id);
    expect((address as Pid).id).toBe(pid.id);
    expect(result).toEqual({ ok: true, value: 'hi a' });
  });
});
