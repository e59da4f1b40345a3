import type { Duration } from './duration.js';

/** Per-call options: `client.get(id, { timeout, signal }).method(...)`. */
export interface GrainCallOptions {
  /**
   * The call's deadline, from now. @default the kind's `@Grain({ requestTimeout })` on a member
   * that hosts the kind, else the cluster's `requestTimeout`
   */
  timeout?: Duration;
  /** Abort the call: a queued call is dropped unrun, a running one is answered at once. */
  signal?: AbortSignal;
}

type LifecycleHookName = 'onGrainActivate' | 'onGrainDeactivate';
type ReservedName = 'constructor' | 'then' | 'catch' | 'finally' | 'toJSON' | 'inspect' | 'toString' | 'toLocaleString' | 'valueOf';

/** The names of `T`'s callable methods: public, string-named, not `_`-prefixed, not hooks. */
export type CallableMethodNames<T> = {
  [K in keyof T]: K extends string
    ? K extends `_${string}` | LifecycleHookName | ReservedName
      ? never
      : T[K] extends (...args: never[]) => unknown
        ? K
        : never
    : never;
}[keyof T];

/** A reference to one grain: each callable method of `T`, returning a promise of its result. */
export type GrainRef<T> = {
  readonly [K in CallableMethodNames<T>]: T[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never;
};

/**
 * A typed client for one kind. `T` is the grain class, which a caller may import as a type
 * only: `GrainClient<AccountGrain>`.
 */
export interface GrainClient<T> {
  /** The kind this client calls. */
  readonly kind: string;
  /**
   * A reference to the grain `identity` of this kind. Cheap: nothing is sent until a method
   * is called. Awaiting or logging a reference never calls the grain.
   */
  get(identity: string, options?: GrainCallOptions): GrainRef<T>;
}
