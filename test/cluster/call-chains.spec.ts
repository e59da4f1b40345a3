import 'reflect-metadata';
import { type INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CallCycleError,
  type Duration,
  Cluster,
  ClusterModule,
  Grain,
  type GrainClient,
  GrainConfigurationError,
  type GrainContext,
  type GrainRef,
  GrainTimeoutError,
  InjectGrainClient,
  InjectGrainContext,
} from 'nestjs-grains';
import { createGrainContext, createFakeGrainClient } from '../../lib/testing/index.js';
import { asyncContextIsCheap, turnStorage } from '../../lib/actor/turn.js';
import { outcome, RecordingLogger, sleep, startCluster } from '../support/cluster.js';

/**
 * `callChains`: how a member tells which turn a call is made from. 'references' (the default
 * where AsyncLocalStorage would turn promise hooks on) carries the turn on a grain's own
 * references; 'async-local-storage' on the async context. Both must keep cycle detection and
 * fencing for what they promise to track; README "Call chains" says what each tracks.
 */

type Mode = 'references' | 'async-local-storage';
/** How a grain reaches the other grain: its own reference (`ctx.client`), or the cluster's client. */
type Via = 'own' | 'global';

const global: { clients?: Cluster } = {};

class PingGrain {
  constructor(readonly ctx: GrainContext) {}
  /** ping → pong (→ back here, when `back`), the call to pong made after an await. */
  async ping(via: Via, back: boolean): Promise<string> {
    await sleep(1);
    return `ping(${await clientOf<PongGrain>(this.ctx, via, 'pong').get('b').pong(via, this.ctx.identity, back)})`;
  }
  /** The same, the call made before the turn's first await. */
  async pingAtOnce(via: Via): Promise<string> {
    return `ping(${await clientOf<PongGrain>(this.ctx, via, 'pong').get('b').pongAtOnce(via, this.ctx.identity)})`;
  }
  hello(): string {
    return `hello ${this.ctx.identity}`;
  }
}

/** Runs inside every pong turn, after its first await, when set. */
const probe: { inTurn?: (() => void) | undefined } = {};

class PongGrain {
  constructor(readonly ctx: GrainContext) {}
  async pong(via: Via, from: string, back: boolean): Promise<string> {
    await sleep(1);
    probe.inTurn?.();
    return back ? `pong(${await clientOf<PingGrain>(this.ctx, via, 'ping').get(from).hello()})` : 'pong';
  }
  async pongAtOnce(via: Via, from: string): Promise<string> {
    return `pong(${await clientOf<PingGrain>(this.ctx, via, 'ping').get(from).hello()})`;
  }
}

/** Interleaved reads that wait, and an exclusive write, on one grain. */
class ShelfGrain {
  constructor(readonly ctx: GrainContext) {}
  async read(ms: number): Promise<string> {
    await sleep(ms);
    return 'read';
  }
  /** Interleaved: waits, then calls this grain's exclusive `write` through its own reference. */
  async readThenWrite(ms: number): Promise<string> {
    await sleep(ms);
    return this.ctx.client<ShelfGrain>('shelf').get(this.ctx.identity).write();
  }
  write(): string {
    return 'written';
  }
}

/** The CallCycleError a failed call's error came from (the grains rethrow it: it is a cause). */
function cycleIn(result: { ok: boolean }): CallCycleError | undefined {
  expect(result.ok).toBe(false);
  for (let e = (result as { error?: unknown }).error; e !== undefined && e !== null; e = (e as { cause?: unknown }).cause) {
    if (e instanceof CallCycleError) return e;
  }
  return undefined;
}

/** Observer pattern: a subscriber hands the hub its own reference (a local call passes it by reference). */
class SubscriberGrain {
  constructor(readonly ctx: GrainContext) {}
  async subscribe(): Promise<void> {
    await this.ctx.client<HubGrain>('hub').get('h').subscribe(this.ctx.client<SubscriberGrain>('subscriber').get(this.ctx.identity));
  }
  async work(ms: number): Promise<string> {
    await sleep(ms);
    return 'worked';
  }
  /** Never ends by itself (the hang timeout poisons the activation). */
  async hang(): Promise<void> {
    await sleep(10_000);
  }
  notify(): string {
    return `notified ${this.ctx.identity}`;
  }
}

class HubGrain {
  private readonly subscribers: Array<GrainRef<SubscriberGrain>> = [];
  subscribe(ref: GrainRef<SubscriberGrain>): void {
    this.subscribers.push(ref);
  }
  /** Notifies in its synchronous part: the calls are the hub's, whatever reference they go through. */
  async publish(): Promise<string[]> {
    return Promise.all(this.subscribers.map((s) => s.notify()));
  }
}

function clientOf<T>(ctx: GrainContext, via: Via, kind: string): GrainClient<T> {
  return via === 'own' ? ctx.client<T>(kind) : global.clients!.client<T>(kind);
}

describe.each<Mode>(['references', 'async-local-storage'])('callChains: %s', (mode) => {
  let cluster: Cluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  async function start(requestTimeout: Duration = '5s') {
    ({ cluster } = await startCluster(
      [
        { name: 'ping', grainClass: PingGrain },
        { name: 'pong', grainClass: PongGrain },
        { name: 'shelf', grainClass: ShelfGrain, interleavedMethods: ['read', 'readThenWrite'] },
        { name: 'subscriber', grainClass: SubscriberGrain },
        { name: 'hub', grainClass: HubGrain },
      ],
      { requestTimeout, callChains: mode, hangTimeout: 30 },
    ));
    global.clients = cluster;
    expect(cluster.callChains).toBe(mode);
    return cluster.client<PingGrain>('ping');
  }

  async function expectCycle(call: Promise<unknown>): Promise<void> {
    const started = Date.now();
    const result = await outcome(call);
    expect(Date.now() - started).toBeLessThan(1_000); // the timeout is 5 s: it did not wait for it
    expect(cycleIn(result)?.cycle).toEqual(['ping/a', 'pong/b', 'ping/a']);
  }

  it("fails A→B→A fast when each call goes through the grain's own reference, after an await", async () => {
    const pings = await start();
    expect(await pings.get('a').ping('own', false)).toBe('ping(pong)');
    await expectCycle(pings.get('a').ping('own', true));
  });

  it('fails A→B→A fast through any client when the calls are made before the first await', async () => {
    const pings = await start();
    await expectCycle(pings.get('a').pingAtOnce('global'));
  });

  it('an interleaved turn calling its own grain exclusively is a cycle, even while other interleaved turns run there', async () => {
    await start();
    const shelves = cluster!.client<ShelfGrain>('shelf');
    const reads = [shelves.get('s').read(200), shelves.get('s').read(200)];
    const result = await outcome(shelves.get('s').readThenWrite(20));
    expect(cycleIn(result)?.cycle).toEqual(['shelf/s', 'shelf/s']);
    expect(await Promise.all(reads)).toEqual(['read', 'read']);
  });

  it("a grain's reference held by another grain is that grain's to call: no cycle while the subscriber is busy, nor refused once it was poisoned", async () => {
    await start();
    const subscribers = cluster!.client<SubscriberGrain>('subscriber');
    const hub = cluster!.client<HubGrain>('hub').get('h');
    await subscribers.get('a').subscribe();
    await subscribers.get('q').subscribe();
    const busy = subscribers.get('a').work(200); // an unrelated turn of subscriber/a, from outside
    await sleep(20);
    expect(await hub.publish()).toEqual(['notified a', 'notified q']);
    await busy;
    await outcome(subscribers.get('q', { timeout: 30 }).hang());
    await sleep(150); // poisoned at ~60 ms
    expect(cluster!.stats().poisoned).toBe(1);
    expect(await hub.publish()).toEqual(['notified a', 'notified q']); // a fresh activation of subscriber/q
  });

  if (mode === 'async-local-storage') {
    it('tracks calls through any client after an await (the async context carries the turn)', async () => {
      const pings = await start();
      await expectCycle(pings.get('a').ping('global', true));
    });
  } else {
    it('does not track calls through a client the grain does not own once the turn has awaited: they wait for their deadline, as calls from outside any grain would', async () => {
      const pings = await start('400ms');
      const result = await outcome(pings.get('a', { timeout: '300ms' }).ping('global', true));
      expect((result as { error: unknown }).error).toBeInstanceOf(GrainTimeoutError);
    });

    it('runs turns without ever entering the AsyncLocalStorage, so no promise hooks are turned on', async () => {
      const pings = await start();
      const seen: unknown[] = [];
      probe.inTurn = () => seen.push(turnStorage.getStore());
      try {
        expect(await pings.get('a').ping('own', false)).toBe('ping(pong)');
      } finally {
        probe.inTurn = undefined;
      }
      expect(seen).toEqual([undefined]);
    });
  }
});

describe('callChains option', () => {
  it("is 'references' unless asked, on every Node; asking for AsyncLocalStorage where it costs promise hooks is logged", async () => {
    expect(new Cluster({ clusterName: 'default' }).callChains).toBe('references');
    expect(asyncContextIsCheap('20.20.2', [])).toBe(false);
    expect(asyncContextIsCheap('22.12.0', [])).toBe(false);
    expect(asyncContextIsCheap('22.12.0', ['--experimental-async-context-frame'])).toBe(true);
    expect(asyncContextIsCheap('24.22.3', [])).toBe(true);
    expect(asyncContextIsCheap('24.22.3', ['--no-async-context-frame'])).toBe(false);
    const logger = new RecordingLogger();
    expect(new Cluster({ clusterName: 'asked', callChains: 'async-local-storage', logger }).callChains).toBe('async-local-storage');
    const said = logger.messages().some((m) => /promise hooks on for the whole process/.test(m));
    expect(said).toBe(!asyncContextIsCheap());
    const quiet = new RecordingLogger();
    new Cluster({ clusterName: 'default', logger: quiet });
    expect(quiet.messages().some((m) => /promise hooks/.test(m))).toBe(false);
  });

  it('refuses a value it does not know, naming the ones it does', () => {
    expect(() => new Cluster({ clusterName: 'bad', callChains: 'hooks' as never })).toThrow(GrainConfigurationError);
    expect(() => new Cluster({ clusterName: 'bad', callChains: 'auto' as never })).toThrow(/'references', 'async-local-storage'/);
  });
});

// Nest: the clients @InjectGrainClient puts in a grain class are that activation's own ------------

@Grain({ kind: 'nest-ping' })
class NestPingGrain {
  constructor(
    @InjectGrainClient('nest-pong') private readonly pongs: GrainClient<NestPongGrain>,
    @InjectGrainContext() private readonly ctx: GrainContext,
  ) {}
  async ping(back: boolean): Promise<string> {
    await sleep(1);
    return `ping(${await this.pongs.get('b').pong(this.ctx.identity, back)})`;
  }
  hello(): string {
    return 'hello';
  }
}

@Grain({ kind: 'nest-pong' })
class NestPongGrain {
  constructor(@InjectGrainClient('nest-ping') private readonly pings: GrainClient<NestPingGrain>) {}
  async pong(from: string, back: boolean): Promise<string> {
    await sleep(1);
    return back ? `pong(${await this.pings.get(from).hello()})` : 'pong';
  }
}

describe('callChains with the Nest module', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it.each<Mode>(['references', 'async-local-storage'])('%s: an injected client in a grain carries its turn after an await: A→B→A fails fast', async (mode) => {
    @Module({
      imports: [
        ClusterModule.forRoot({ clusterName: 'chains', requestTimeout: '5s', callChains: mode }),
        ClusterModule.forFeature([NestPingGrain, NestPongGrain]),
      ],
    })
    class AppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    const pings = app.get(Cluster).client<NestPingGrain>('nest-ping');
    expect(await pings.get('a').ping(false)).toBe('ping(pong)');
    const started = Date.now();
    const result = await outcome(pings.get('a').ping(true));
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(cycleIn(result)?.cycle).toEqual(['nest-ping/a', 'nest-pong/b', 'nest-ping/a']);
  });
});

describe('createGrainContext({ clients })', () => {
  it('gives a grain the client passed for a kind as ctx.client(kind), and names a kind it was not given', async () => {
    const pongs = createFakeGrainClient<PongGrain>('pong', { pongAtOnce: async () => 'faked' });
    const ctx = createGrainContext({ identity: 'a', clients: { pong: pongs } });
    expect(await new PingGrain(ctx).pingAtOnce('own')).toBe('ping(faked)');
    expect(() => ctx.client('elsewhere')).toThrow(/client\('elsewhere'\)/);
  });
});
