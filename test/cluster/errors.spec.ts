import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Cluster,
  type GrainContext,
  GrainConfigurationError,
  GrainError,
  GrainInvocationError,
  GrainOverloadedError,
  InvalidGrainCallError,
  MethodNotCallableError,
  UnknownKindError,
} from 'nestjs-grains';
import { outcome, sleep, startCluster } from '../support/cluster.js';

class BaseGrain {
  inherited(): string {
    return 'from base';
  }
}

class ShapeGrain extends BaseGrain {
  static calls = 0;
  constructor(readonly ctx: GrainContext) {
    super();
  }
  area(side: number): number {
    ShapeGrain.calls++;
    return side * side;
  }
  _hidden(): string {
    return 'hidden';
  }
  onGrainActivate(): void {}
  get computed(): number {
    return 1;
  }
  fail(kind: string): never {
    if (kind === 'coded') throw Object.assign(new RangeError('bad side'), { code: 'BAD_SIDE' });
    if (kind === 'numeric') throw Object.assign(new Error('numeric'), { code: 42 });
    // eslint-disable-next-line @typescript-eslint/only-throw-error
    throw 'a string';
  }
  async slow(ms: number): Promise<void> {
    await sleep(ms);
  }
}

describe('errors a caller can act on', () => {
  let cluster: Cluster;
  afterEach(async () => cluster?.shutdown());

  it('every error is a GrainError with a stable code', async () => {
    ({ cluster } = await startCluster([{ name: 'shape', grainClass: ShapeGrain }]));
    const result = await outcome(cluster.request('nope', 'x', 'area', [1]));
    const error = (result as { error: unknown }).error;
    expect(error).toBeInstanceOf(UnknownKindError);
    expect(error).toBeInstanceOf(GrainError);
    expect(error).toMatchObject({ code: 'GRAIN_UNKNOWN_KIND', kind: 'nope', name: 'UnknownKindError' });
    expect((error as Error).message).toContain('forFeature');
  });

  it('unknown kind through a client fails with UnknownKindError, not a TypeError', async () => {
    ({ cluster } = await startCluster([{ name: 'shape', grainClass: ShapeGrain }]));
    const ghost = cluster.client<ShapeGrain>('ghost').get('x');
    expect(((await outcome(ghost.area(2))) as { error: unknown }).error).toBeInstanceOf(UnknownKindError);
  });

  it('refuses what is not callable: _-prefixed, hooks, constructor, getters, missing names', async () => {
    ({ cluster } = await startCluster([{ name: 'shape', grainClass: ShapeGrain }]));
    for (const method of ['_hidden', 'onGrainActivate', 'onGrainDeactivate', 'constructor', 'computed', 'missing', 'toString', 'hasOwnProperty']) {
      const result = await outcome(cluster.request('shape', 's', method, []));
      expect((result as { error: unknown }).error, method).toBeInstanceOf(MethodNotCallableError);
    }
    // through a reference too: the name is not on the typed client, but a caller in plain JS may try
    const ref = cluster.client<ShapeGrain>('shape').get('s') as unknown as Record<string, () => Promise<unknown>>;
    expect(((await outcome(ref['_hidden']!())) as { error: unknown }).error).toBeInstanceOf(MethodNotCallableError);
    expect(((await outcome(ref['onGrainActivate']!())) as { error: unknown }).error).toBeInstanceOf(MethodNotCallableError);
    // inherited methods are callable
    expect(await cluster.client<ShapeGrain>('shape').get('s').inherited()).toBe('from base');
  });

  it('wraps what the grain threw in GrainInvocationError with its name, message and code', async () => {
    ({ cluster } = await startCluster([{ name: 'shape', grainClass: ShapeGrain }]));
    const shape = cluster.client<ShapeGrain>('shape').get('s');
    const coded = ((await outcome(shape.fail('coded'))) as { error: GrainInvocationError }).error;
    expect(coded).toBeInstanceOf(GrainInvocationError);
    expect(coded).toMatchObject({
      code: 'GRAIN_INVOCATION_FAILED',
      remoteName: 'RangeError',
      remoteMessage: 'bad side',
      remoteCode: 'BAD_SIDE',
      kind: 'shape',
      identity: 's',
      method: 'fail',
    });
    expect(coded.cause).toBeInstanceOf(RangeError);
    expect(coded.origin).toBe('shape/s.fail');
    expect(((await outcome(shape.fail('numeric'))) as { error: GrainInvocationError }).error.remoteCode).toBe('42');
    expect(((await outcome(shape.fail('string'))) as { error: GrainInvocationError }).error).toMatchObject({
      remoteName: 'NonError',
      remoteMessage: 'a string',
      remoteCode: undefined,
    });
    // the activation survives a throwing call
    expect(await shape.area(3)).toBe(9);
  });

  it('refuses calls beyond maxQueueLength with GrainOverloadedError; refused calls never run', async () => {
    ({ cluster } = await startCluster([{ name: 'shape', grainClass: ShapeGrain, maxQueueLength: 5 }]));
    const shape = cluster.client<ShapeGrain>('shape').get('o');
    await shape.area(1);
    ShapeGrain.calls = 0;
    const blocker = shape.slow(50);
    const results = await Promise.all(Array.from({ length: 20 }, () => outcome(shape.area(2))));
    await blocker;
    const refused = results.filter((r) => !r.ok);
    expect(results.filter((r) => r.ok)).toHaveLength(5);
    expect(refused).toHaveLength(15);
    for (const r of refused) expect((r as { error: unknown }).error).toBeInstanceOf(GrainOverloadedError);
    expect(ShapeGrain.calls).toBe(5);
    expect((refused[0] as { error: GrainOverloadedError }).error).toMatchObject({ code: 'GRAIN_OVERLOADED', maxQueued: 5 });
  });

  it('lets a kind refuse identities with canActivate, before anything is created', async () => {
    const { cluster: c } = await startCluster([]);
    await c.shutdown();
    const { Cluster: ClusterClass, GrainIdentityRefusedError } = await import('nestjs-grains');
    cluster = new ClusterClass({ clusterName: 'ca', logger: { log() {}, warn() {}, error() {} } });
    cluster.registerKind({ name: 'shape', grainClass: ShapeGrain, create: (ctx) => new ShapeGrain(ctx), canActivate: (id) => id.startsWith('ok-') });
    await cluster.start();
    const refused = (await outcome(cluster.client<ShapeGrain>('shape').get('bad').area(2))) as { error: unknown };
    expect(refused.error).toBeInstanceOf(GrainIdentityRefusedError);
    expect(refused.error).toMatchObject({ code: 'GRAIN_IDENTITY_REFUSED', kind: 'shape', identity: 'bad' });
    expect(cluster.stats().activated).toBe(0);
    expect(await cluster.client<ShapeGrain>('shape').get('ok-1').area(2)).toBe(4);
  });

  it('refuses bad identities and timeouts before anything runs', async () => {
    ({ cluster } = await startCluster([{ name: 'shape', grainClass: ShapeGrain }]));
    const shapes = cluster.client<ShapeGrain>('shape');
    expect(() => shapes.get('')).toThrow(InvalidGrainCallError);
    expect(() => shapes.get(42 as unknown as string)).toThrow(InvalidGrainCallError);
    expect(() => shapes.get('a', { timeout: -1 })).toThrow(InvalidGrainCallError);
    expect(() => shapes.get('a', { timeout: 'soon' as never })).toThrow(/not a duration/);
    expect(((await outcome(cluster.request('shape', 'a', 'area', [1], { timeout: 0 }))) as { error: unknown }).error).toBeInstanceOf(InvalidGrainCallError);
  });

  it('refuses bad configuration with GrainConfigurationError', () => {
    expect(() => new Cluster({ clusterName: 'has space' })).toThrow(GrainConfigurationError);
    expect(() => new Cluster({ clusterName: 'ok', requestTimeout: '5 parsecs' as never })).toThrow(/requestTimeout/);
    expect(() => new Cluster({ clusterName: 'ok', maxQueueLength: 0 })).toThrow(/maxQueueLength/);
    const cluster = new Cluster({ clusterName: 'ok' });
    cluster.registerKind({ name: 'shape', grainClass: ShapeGrain, create: (ctx) => new ShapeGrain(ctx) });
    class OtherShape {}
    expect(() => cluster.registerKind({ name: 'shape', grainClass: OtherShape, create: () => new OtherShape() })).toThrow(/"ShapeGrain" and "OtherShape"/);
    expect(() => cluster.registerKind({ name: 'bad/kind', grainClass: OtherShape, create: () => new OtherShape() })).toThrow(/not valid/);
    expect(() => cluster.registerKind({ name: 'x', grainClass: ShapeGrain, create: (ctx) => new ShapeGrain(ctx), interleavedMethods: ['nope'] })).toThrow(
      /not a callable method/,
    );
  });
});

describe('grain references', () => {
  let cluster: Cluster;
  afterEach(async () => cluster?.shutdown());

  it('awaiting, logging, serialising or inspecting a reference never calls the grain', async () => {
    ({ cluster } = await startCluster([{ name: 'shape', grainClass: ShapeGrain }]));
    ShapeGrain.calls = 0;
    for (const kind of ['shape', 'unknown-kind']) {
      const ref = cluster.client<ShapeGrain>(kind).get('r');
      expect(await ref).toBe(ref); // resolves to itself: no `then`
      expect(await Promise.resolve(ref)).toBe(ref);
      JSON.stringify(ref);
      inspect(ref, { showHidden: true, depth: 3 });
      String(Object.keys(ref));
      expect((ref as unknown as Record<PropertyKey, unknown>)[Symbol.iterator]).toBeUndefined();
      expect((ref as unknown as Record<string, unknown>)['then']).toBeUndefined();
      expect((ref as unknown as Record<string, unknown>)['toJSON']).toBeUndefined();
      expect((ref as unknown as Record<string, unknown>)['inspect']).toBeUndefined();
    }
    expect(ShapeGrain.calls).toBe(0);
    expect(cluster.stats().activated).toBe(0);
  });

  it('calls nothing until a method is called', async () => {
    ({ cluster } = await startCluster([{ name: 'shape', grainClass: ShapeGrain }]));
    cluster.client<ShapeGrain>('shape').get('lazy');
    expect(cluster.stats().activated).toBe(0);
  });
});
