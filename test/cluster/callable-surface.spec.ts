import 'reflect-metadata';
import { EventEmitter } from 'node:events';
import { AsyncResource } from 'node:async_hooks';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { type Cluster, type GrainContext, GrainConfigurationError, Grain, MethodNotCallableError } from 'nestjs-grains';
import { callableMethods } from '../../lib/cluster/callable-methods.js';
import { outcome, startCluster } from '../support/cluster.js';
import { type InProcessCluster, startMembers } from '../support/in-process-cluster.js';

/** The app's own base class, between the grain and Node's EventEmitter. */
class AuditedEmitter extends EventEmitter {
  protected readonly audit: string[] = [];
  history(): string[] {
    return [...this.audit];
  }
}

/** A grain that emits events locally: EventEmitter's methods must not be callable. */
class ThermostatGrain extends AuditedEmitter {
  private celsius = 20;
  constructor(readonly ctx: GrainContext) {
    super();
    this.on('changed', (value: number) => this.audit.push(`changed to ${value}`));
  }
  set(celsius: number): number {
    this.celsius = celsius;
    this.emit('changed', celsius);
    return this.celsius;
  }
  read(): number {
    return this.celsius;
  }
  /** How many listeners 'changed' has: unchanged unless someone could call removeAllListeners. */
  changeListeners(): number {
    return this.listenerCount('changed');
  }
}

const EVENT_EMITTER_METHODS = [
  'emit',
  'on',
  'once',
  'off',
  'addListener',
  'removeListener',
  'removeAllListeners',
  'setMaxListeners',
  'getMaxListeners',
  'listeners',
  'rawListeners',
  'listenerCount',
  'prependListener',
  'prependOnceListener',
  'eventNames',
];

/** Stands for a class from a package (node_modules): nothing at run time tells it from the app's. */
class PackageAggregateRoot {
  private readonly events: string[] = [];
  apply(event: string): void {
    this.events.push(event);
  }
  commit(): string[] {
    return this.events.splice(0);
  }
}

/** The app's base class above the package's. */
class AppAggregate extends PackageAggregateRoot {
  version(): number {
    return 1;
  }
}

class OrderGrain extends AppAggregate {
  place(item: string): string {
    this.apply(`placed ${item}`);
    return item;
  }
}

describe('the callable surface is what the user wrote', () => {
  it('a grain extending EventEmitter: its own methods and its own base class’s, none of EventEmitter’s', () => {
    const names = callableMethods(ThermostatGrain);
    expect([...names].sort()).toEqual(['changeListeners', 'history', 'read', 'set']);
    for (const method of EVENT_EMITTER_METHODS) expect(names.has(method), method).toBe(false);
  });

  it('nothing of other Node or JavaScript built-ins either: streams, AsyncResource, EventTarget, Map, Error', () => {
    class Source extends Readable {
      override _read(): void {}
      level(): number {
        return 1;
      }
    }
    class Tracked extends AsyncResource {
      constructor() {
        super('tracked');
      }
      track(): number {
        return 2;
      }
    }
    class Target extends EventTarget {
      fire(): boolean {
        return true;
      }
    }
    class Registry extends Map<string, number> {
      count(): number {
        return this.size;
      }
    }
    class Failure extends Error {
      reason(): string {
        return this.message;
      }
    }
    expect([...callableMethods(Source)]).toEqual(['level']);
    expect([...callableMethods(Tracked)]).toEqual(['track']);
    expect([...callableMethods(Target)]).toEqual(['fire']);
    expect([...callableMethods(Registry)]).toEqual(['count']);
    expect([...callableMethods(Failure)]).toEqual(['reason']);
  });

  it('a class of the app named like a Node class is still the app’s', () => {
    class EventEmitter {
      emit(): string {
        return 'mine';
      }
    }
    class Grainy extends EventEmitter {
      own(): number {
        return 1;
      }
    }
    expect([...callableMethods(Grainy)].sort()).toEqual(['emit', 'own']);
  });

  it('without callableBases every base class up to the first built-in counts (a package class cannot be told apart)', () => {
    expect([...callableMethods(OrderGrain)].sort()).toEqual(['apply', 'commit', 'place', 'version']);
  });

  it('callableBases: only the listed base classes count; the first one not listed ends them', () => {
    expect([...callableMethods(OrderGrain, [AppAggregate])].sort()).toEqual(['place', 'version']);
    expect([...callableMethods(OrderGrain, [])]).toEqual(['place']);
    // a listed class above an unlisted one is never reached: refused, not silently ignored
    expect(() => callableMethods(OrderGrain, [PackageAggregateRoot])).toThrow(GrainConfigurationError);
    expect(() => callableMethods(OrderGrain, [ThermostatGrain])).toThrow(/callableBases names "ThermostatGrain"/);
    // a built-in never counts, listed or not
    expect(() => callableMethods(ThermostatGrain, [AuditedEmitter, EventEmitter])).toThrow(GrainConfigurationError);
  });

  it('@Grain({ callableBases }) applies wherever the class is registered', () => {
    @Grain({ kind: 'order', callableBases: [AppAggregate] })
    class DecoratedOrderGrain extends AppAggregate {
      place(): string {
        return 'placed';
      }
    }
    expect([...callableMethods(DecoratedOrderGrain)].sort()).toEqual(['place', 'version']);
  });
});

describe('calls to what the user did not write fail with MethodNotCallableError', () => {
  let cluster: Cluster | undefined;
  let members: InProcessCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    await members?.shutdown();
    cluster = undefined;
    members = undefined;
  });

  it('on this member: emit, on, removeAllListeners, setMaxListeners are refused; the grain is untouched', async () => {
    ({ cluster } = await startCluster([{ name: 'thermostat', grainClass: ThermostatGrain }]));
    const ref = cluster.client<ThermostatGrain>('thermostat').get('t1');
    expect(await ref.set(21)).toBe(21);
    for (const [method, args] of [
      ['emit', ['changed', -273]],
      ['on', ['changed', 'not a function']],
      ['removeAllListeners', []],
      ['setMaxListeners', [0]],
    ] as const) {
      const result = await outcome(cluster.request('thermostat', 't1', method, [...args]));
      expect(result.ok, method).toBe(false);
      const error = (result as { error: unknown }).error;
      expect(error, method).toBeInstanceOf(MethodNotCallableError);
      expect(error, method).toMatchObject({ code: 'GRAIN_METHOD_NOT_CALLABLE', kind: 'thermostat', method });
    }
    expect(await ref.read()).toBe(21);
    expect(await ref.history()).toEqual(['changed to 21']);
    expect(await ref.changeListeners()).toBe(1);
  });

  it('@Grain({ callableBases: [] }) on a grain over a package class: only the grain’s own methods', async () => {
    @Grain({ callableBases: [] })
    class InvoiceGrain extends PackageAggregateRoot {
      constructor(readonly ctx: GrainContext) {
        super();
      }
      bill(amount: number): number {
        this.apply(`billed ${amount}`);
        return amount;
      }
    }
    ({ cluster } = await startCluster([{ name: 'invoice', grainClass: InvoiceGrain }]));
    expect(await cluster.request('invoice', 'i1', 'bill', [5])).toBe(5);
    const result = await outcome(cluster.request('invoice', 'i1', 'commit', []));
    expect((result as { error: unknown }).error).toBeInstanceOf(MethodNotCallableError);
  });

  it('from another member over gRPC: refused with MethodNotCallableError; own and base methods answer', async () => {
    members = await startMembers([{ kinds: [{ name: 'thermostat', grainClass: ThermostatGrain }] }, { clientOnly: true, kinds: [] }], 'surface');
    const caller = members.members[1]!;
    const ref = caller.client<ThermostatGrain>('thermostat').get('t2');
    expect(await ref.set(19)).toBe(19);
    for (const method of ['emit', 'removeAllListeners', 'setMaxListeners', 'on']) {
      const result = await outcome(caller.request('thermostat', 't2', method, method === 'emit' ? ['changed', 99] : []));
      const error = (result as { error: unknown }).error;
      expect(error, method).toBeInstanceOf(MethodNotCallableError);
      expect(error, method).toMatchObject({ code: 'GRAIN_METHOD_NOT_CALLABLE', method });
    }
    expect(await ref.read()).toBe(19);
    expect(await ref.history()).toEqual(['changed to 19']);
    expect(await ref.changeListeners()).toBe(1);
  });
});
