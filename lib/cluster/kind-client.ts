import { RESERVED_NAMES } from './callable-methods.js';
import { toMs } from './duration.js';
import { InvalidGrainCallError } from './errors.js';
import { identityProblem } from './identity-rule.js';
import type { GrainCallOptions, GrainClient, GrainRef } from './grain-client.interface.js';
import type { MethodRoute } from './kind.js';
import type { TurnSource } from '../actor/turn.js';

/** The part of the cluster a client needs. */
export interface GrainInvoker {
  /** The general path: any kind, any method name (checked). */
  invoke(
    kind: string,
    identity: string,
    method: string,
    args: unknown[],
    timeoutMs: number | undefined,
    signal: AbortSignal | undefined,
    from?: TurnSource,
  ): Promise<unknown>;
  /** The routes of `kind`'s callable methods when this member knows the kind, else undefined. */
  routesOf(kind: string): ReadonlyMap<string, MethodRoute> | undefined;
  /** A route for `method` of a kind hosted only by other members (the callee checks it), or undefined when there are none. */
  remoteRouteOf(kind: string, method: string): MethodRoute | undefined;
  /** The longest identity, in UTF-8 bytes (identity-rule.ts). */
  readonly maxIdentityBytes: number;
  /** The fast path: a method already known to be callable, and the grain's precomputed key. */
  invokeRoute(
    route: MethodRoute,
    identity: string,
    key: string,
    args: unknown[],
    timeoutMs: number | undefined,
    signal: AbortSignal | undefined,
    /** The activation whose reference makes the call (a bound client's), if any: its current turn is the caller. */
    from?: TurnSource,
  ): Promise<unknown>;
}

/** Method names a reference of a remote-only kind remembers (names come from callers). */
const MAX_LEARNED_METHODS = 1_000;

const IDENTITY = Symbol('grain.identity');
const KEY = Symbol('grain.key');
const TIMEOUT = Symbol('grain.timeoutMs');
const SIGNAL = Symbol('grain.signal');
const FROM = Symbol('grain.from');

interface RefState {
  [IDENTITY]: string;
  [KEY]: string;
  [TIMEOUT]: number | undefined;
  [SIGNAL]: AbortSignal | undefined;
  [FROM]: TurnSource | undefined;
}

/**
 * The client of one kind. A reference is a plain object whose prototype holds one function
 * per callable method (no Proxy on the hot path). Below that prototype sits a Proxy that
 * answers any other string name with a function whose call fails with a typed error
 * (method not callable, unknown kind), and answers `then`, `toJSON`, `inspect`, symbols and
 * other reserved names with `undefined`, so awaiting or logging a reference calls nothing.
 */
export class KindClient<T> implements GrainClient<T> {
  private proto: object | undefined;
  private readonly fallback: object;
  /**
   * For a kind this member does not host: a plain layer above the fallback where each
   * method name called once is remembered with its route, so later calls are ordinary
   * property lookups instead of Proxy traps.
   */
  private readonly learned: Record<string, unknown>;

  constructor(
    private readonly invoker: GrainInvoker,
    readonly kind: string,
  ) {
    this.learned = Object.create(null) as Record<string, unknown>;
    this.fallback = createFallback(invoker, kind, this.learned);
    Object.setPrototypeOf(this.learned, this.fallback);
  }

  get(identity: string, options?: GrainCallOptions): GrainRef<T> {
    return this.refFrom(identity, options, undefined);
  }

  /**
   * The same client for code of one activation: its references carry the activation, so a
   * call made through them belongs to the activation's current turn (call chains, cycle
   * detection, fencing, `ctx.signal`) without any async context.
   */
  boundTo(from: TurnSource): GrainClient<T> {
    return new BoundKindClient(this, from);
  }

  /** @internal */
  refFrom(identity: string, options: GrainCallOptions | undefined, from: TurnSource | undefined): GrainRef<T> {
    const problem = identityProblem(identity, this.invoker.maxIdentityBytes);
    if (problem !== undefined) throw new InvalidGrainCallError(`${this.kind}: ${problem}.`);
    // NOTE: one literal that names its prototype, not Object.create and five assignments: the
    // Proxy below the prototype makes every assignment of a new property a slow [[Set]] through
    // it (~420 ns a reference, against ~50 for the literal, whose properties are defined).
    const ref = {
      __proto__: this.prototype(),
      [IDENTITY]: identity,
      [KEY]: `${this.kind}/${identity}`,
      [TIMEOUT]: options?.timeout === undefined ? undefined : callTimeout(this.kind, options.timeout),
      [SIGNAL]: options?.signal,
      [FROM]: from,
    };
    return ref as unknown as GrainRef<T>;
  }

  private prototype(): object {
    if (this.proto !== undefined) return this.proto;
    const routes = this.invoker.routesOf(this.kind);
    // NOTE: a kind not hosted here: names resolve through the fallback, which remembers them.
    if (routes === undefined) return this.learned;
    const proto = Object.create(this.fallback) as Record<string, unknown>;
    for (const route of routes.values()) proto[route.method] = routeCaller(this.invoker, route);
    this.proto = proto;
    return proto;
  }
}

/** A kind's client as one activation's code holds it (see `KindClient.boundTo`). */
class BoundKindClient<T> implements GrainClient<T> {
  readonly kind: string;

  constructor(
    private readonly client: KindClient<T>,
    private readonly from: TurnSource,
  ) {
    this.kind = client.kind;
  }

  get(identity: string, options?: GrainCallOptions): GrainRef<T> {
    return this.client.refFrom(identity, options, this.from);
  }
}

function methodCaller(invoker: GrainInvoker, kind: string, method: string) {
  return function (this: RefState, ...args: unknown[]): Promise<unknown> {
    return invoker.invoke(kind, this[IDENTITY], method, args, this[TIMEOUT], this[SIGNAL], this[FROM]);
  };
}

function routeCaller(invoker: GrainInvoker, route: MethodRoute) {
  // NOTE: a kind's own requestTimeout is applied by the request path (`invokeRoute`), from the route.
  return function (this: RefState, ...args: unknown[]): Promise<unknown> {
    return invoker.invokeRoute(route, this[IDENTITY], this[KEY], args, this[TIMEOUT], this[SIGNAL], this[FROM]);
  };
}

function createFallback(invoker: GrainInvoker, kind: string, learned: Record<string, unknown>): object {
  let count = 0;
  return new Proxy(Object.create(null) as object, {
    get(_target, name) {
      if (typeof name !== 'string' || RESERVED_NAMES.has(name)) return undefined;
      const route = invoker.remoteRouteOf(kind, name);
      if (route === undefined) return methodCaller(invoker, kind, name);
      const caller = routeCaller(invoker, route);
      if (count < MAX_LEARNED_METHODS) {
        count++;
        Object.defineProperty(learned, name, { value: caller, writable: true, configurable: true, enumerable: false });
      }
      return caller;
    },
  });
}

function callTimeout(kind: string, timeout: GrainCallOptions['timeout'] & {}): number {
  try {
    return toMs(timeout, 'timeout');
  } catch (error) {
    throw new InvalidGrainCallError(`${kind}: ${(error as Error).message}`);
  }
}
