import { afterEach, describe, expect, it } from 'vitest';
import {
  Cluster,
  type GrainContext,
  GrainActivationError,
  GrainInvocationError,
  GrainSerializationError,
  type KindDefinition,
  MessageTooLargeError,
} from 'nestjs-grains';
import { createTestCluster, type TestCluster } from '../../lib/testing/index.js';

class Money {
  constructor(readonly cents: number) {}
  plus(other: Money): Money {
    return new Money(this.cents + other.cents);
  }
}

class BusinessError extends Error {
  readonly code = 'INSUFFICIENT_FUNDS';
  constructor(readonly shortBy: number) {
    super(`short by ${shortBy}`);
    this.name = 'BusinessError';
  }
}

class WalletGrain {
  /** What the last call received, to see whether it was the caller's object or a copy. */
  static lastArgument: unknown;
  constructor(readonly ctx: GrainContext) {}
  keep(value: unknown): string {
    WalletGrain.lastArgument = value;
    return typeof value;
  }
  stamp(order: { items: string[] }): number {
    order.items.push('stamped by the grain');
    return order.items.length;
  }
  money(cents: number): Money {
    return new Money(cents);
  }
  echo<T>(value: T): T {
    return value;
  }
  nothing(): void {}
  withdraw(cents: number): never {
    throw new BusinessError(cents);
  }
}

class BrokenGrain {
  onGrainActivate(): void {
    throw new BusinessError(1);
  }
  call(): string {
    return 'never';
  }
}

const kinds: KindDefinition[] = [
  { name: 'wallet', grainClass: WalletGrain, create: (ctx) => new WalletGrain(ctx) },
  { name: 'broken', grainClass: BrokenGrain, create: () => new BrokenGrain() },
];

/** What a caller can observe of an error. */
function shape(error: unknown): Record<string, unknown> {
  const e = error as Record<string, unknown> & Error;
  return {
    class: e.constructor.name,
    name: e.name,
    message: e.message,
    code: e['code'],
    neverRan: e['neverRan'],
    remoteName: e['remoteName'],
    remoteMessage: e['remoteMessage'],
    remoteCode: e['remoteCode'],
    origin: e['origin'],
    reason: e['reason'],
    cause: e.cause,
  };
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a failure, got ${String(value)}`);
    },
    (error: unknown) => error,
  );
}

async function embedded(serializeLocalCalls: boolean): Promise<Cluster> {
  const cluster = new Cluster({ clusterName: 'local', serializeLocalCalls });
  for (const kind of kinds) cluster.registerKind(kind);
  await cluster.start();
  return cluster;
}

describe('serializeLocalCalls: local calls cross the codec', () => {
  let single: Cluster | undefined;
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await single?.shutdown();
    await cluster?.shutdown();
    single = undefined;
    cluster = undefined;
    WalletGrain.lastArgument = undefined;
  });

  /** The same grain called from the member hosting it (local) and from the other one (remote). */
  async function bothWays<T = WalletGrain>(kind = 'wallet', options: { maxMessageSize?: number } = {}) {
    cluster = await createTestCluster({
      members: 2,
      kinds,
      ...(options.maxMessageSize !== undefined && { options: { remote: { maxMessageSize: options.maxMessageSize } } }),
    });
    const identity = cluster.identityOn(kind, 1);
    return {
      local: cluster.members[1]!.client<T>(kind).get(identity),
      remote: cluster.members[0]!.client<T>(kind).get(identity),
    };
  }

  it('fails a class instance argument locally exactly as it fails across members', async () => {
    const { local, remote } = await bothWays();
    const remotely = await failure(remote.keep(new Money(5)));
    expect(remotely).toBeInstanceOf(GrainSerializationError);
    expect(cluster!.members[1]!.stats().activations).toBe(0); // refused before it was sent
    const locally = await failure(local.keep(new Money(5)));
    expect(shape(locally)).toEqual(shape(remotely));
    expect(locally).toMatchObject({ code: 'GRAIN_SERIALIZATION', neverRan: true });
    expect((locally as Error).message).toContain('$[0]');
    expect(WalletGrain.lastArgument).toBeUndefined(); // it never ran, either way
  });

  it('passes the same class instance, by reference, without the switch', async () => {
    single = await embedded(false);
    const money = new Money(5);
    expect(await single.client<WalletGrain>('wallet').get('w').keep(money)).toBe('object');
    expect(WalletGrain.lastArgument).toBe(money);
  });

  it('fails a class instance in a single embedded member with the switch (the default codec, no remote)', async () => {
    single = await embedded(true);
    const error = await failure(single.client<WalletGrain>('wallet').get('w').keep(new Money(5)));
    expect(error).toBeInstanceOf(GrainSerializationError);
    expect(WalletGrain.lastArgument).toBeUndefined();
  });

  it.each([
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['a Map subclass', new (class Registry extends Map {})()],
    ['an Error', new Error('as data')],
    [
      'a cycle',
      (() => {
        const o: Record<string, unknown> = {};
        o['self'] = o;
        return o;
      })(),
    ],
  ])('fails %s as an argument, as between members', async (_what, value) => {
    const { local, remote } = await bothWays();
    expect(shape(await failure(local.keep(value)))).toEqual(shape(await failure(remote.keep(value))));
  });

  it('gives the grain copies: what it does to an argument does not reach the caller', async () => {
    single = await embedded(true);
    const order = { items: ['book'] };
    expect(await single.client<WalletGrain>('wallet').get('w').stamp(order)).toBe(2);
    expect(order.items).toEqual(['book']);
    // without the switch the grain wrote into the caller's object: a bug only one member hides
    await single.shutdown();
    single = await embedded(false);
    await single.client<WalletGrain>('wallet').get('w').stamp(order);
    expect(order.items).toEqual(['book', 'stamped by the grain']);
  });

  it('fails a result that cannot cross as a remote caller sees it (GrainInvocationError, GrainSerializationError inside)', async () => {
    const { local, remote } = await bothWays();
    const remotely = await failure(remote.money(5));
    expect(remotely).toBeInstanceOf(GrainInvocationError);
    expect(remotely).toMatchObject({ remoteName: 'GrainSerializationError', remoteCode: 'GRAIN_SERIALIZATION' });
    expect(shape(await failure(local.money(5)))).toEqual(shape(remotely));
  });

  it('hands a thrown error over as a remote caller gets it: name, message and code, no cause', async () => {
    const { local, remote } = await bothWays();
    const remotely = await failure(remote.withdraw(7));
    const locally = await failure(local.withdraw(7));
    expect(remotely).toMatchObject({ remoteName: 'BusinessError', remoteMessage: 'short by 7', remoteCode: 'INSUFFICIENT_FUNDS' });
    expect((remotely as Error).cause).toBeUndefined();
    expect(shape(locally)).toEqual(shape(remotely));
    // without the switch the local caller could reach the thrown object, which no remote caller can
    single = await embedded(false);
    const unserialized = await failure(single.client<WalletGrain>('wallet').get('w').withdraw(7));
    expect((unserialized as Error).cause).toBeInstanceOf(BusinessError);
  });

  it('hands a failed activation over as a remote caller gets it', async () => {
    const { local, remote } = await bothWays<BrokenGrain>('broken');
    const remotely = await failure(remote.call());
    expect(remotely).toBeInstanceOf(GrainActivationError);
    expect(shape(await failure(local.call()))).toEqual(shape(remotely));
  });

  it('holds arguments to the remote message size, as between members', async () => {
    const { local, remote } = await bothWays('wallet', { maxMessageSize: 128 * 1024 });
    const big = 'x'.repeat(100 * 1024);
    const remotely = await failure(remote.keep(big));
    expect(remotely).toBeInstanceOf(MessageTooLargeError);
    expect(shape(await failure(local.keep(big)))).toEqual(shape(remotely));
  });

  it('returns what crosses: plain data as copies, Date, Map, BigInt, undefined', async () => {
    single = await embedded(true);
    const wallet = single.client<WalletGrain>('wallet').get('w');
    const value = { at: new Date(0), tags: new Map([['a', 1n]]), nested: [1, 'two', null, undefined] };
    const echoed = await wallet.echo(value);
    expect(echoed).toEqual(value);
    expect(echoed).not.toBe(value);
    expect(await wallet.nothing()).toBeUndefined();
  });
});
