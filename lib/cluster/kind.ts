import { callableMethods } from './callable-methods.js';
import { type Duration, toMs } from './duration.js';
import { GrainConfigurationError } from './errors.js';
import type { GrainContext } from './grain-context.js';
import { type Placement, placementStrategy } from './placement/placement.js';
import type { PlacementStrategy } from './placement/placement-strategy.js';

/** Why an activation is being deactivated, as `onGrainDeactivate(reason)` receives it. */
export type DeactivationReason = 'idle' | 'requested' | 'shutdown';

/** Optional lifecycle hooks a grain class may implement. */
export interface OnGrainActivate {
  /** Runs once per activation, before its first call; a throw fails the activation. */
  onGrainActivate(): unknown;
}
export interface OnGrainDeactivate {
  /** Runs once when the activation is deactivated gracefully; never after a crash. */
  onGrainDeactivate(reason: DeactivationReason): unknown;
}

/** A grain class as the runtime sees it. */
export type GrainClass<T extends object = object> = abstract new (...args: never[]) => T;

/** How to host one kind: what `Cluster.registerKind` takes. */
export interface KindDefinition<T extends object = object> {
  /** The kind name, unique in the cluster: letters, digits, `.`, `_`, `-`. */
  readonly name: string;
  /** The grain class: its prototype gives the callable methods; its name appears in messages. */
  readonly grainClass: GrainClass<T>;
  /** Creates the grain instance of one activation. */
  create(context: GrainContext): T;
  /** Deactivate after this long without calls. @default the cluster's `idleTimeout` */
  readonly idleTimeout?: Duration;
  /** Calls that may wait per activation. @default the cluster's `maxQueueLength` */
  readonly maxQueueLength?: number;
  /**
   * The deadline of a call to this kind that gives no `timeout` of its own, for calls made on
   * a member that hosts the kind. A member that knows the kind by name only does not know
   * this, and gives such calls its own `requestTimeout`. @default the cluster's `requestTimeout`
   */
  readonly requestTimeout?: Duration;
  /**
   * Where the identity lookup places new activations of this kind, on the members that host it
   * (RedisIdentityLookup; its `placementByKind` entry for the kind wins over this). @default the
   * lookup's `placement`
   */
  readonly placement?: Placement | PlacementStrategy;
  /** Every method interleaves (the kind is re-entrant). @default false */
  readonly interleave?: boolean;
  /** Methods that may interleave with each other (read-only methods). */
  readonly interleavedMethods?: Iterable<string>;
  /** Methods that are safe to run twice, so a remote call whose outcome is unknown may be retried. */
  readonly idempotentMethods?: Iterable<string>;
  /** Refuse identities before anything is stored or constructed (`GrainIdentityRefusedError`). */
  readonly canActivate?: (identity: string) => boolean;
  /**
   * The base classes whose methods are callable, besides the grain class's own; the first
   * base class not listed ends them (see `callableMethods`). Name the app's own base classes
   * when the grain extends a class from a package. @default `@Grain({ callableBases })`, else
   * every base class up to the first built-in one (`EventEmitter`, streams, `Object`, …)
   */
  readonly callableBases?: Iterable<GrainClass>;
}

const KIND_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Whether `name` may name a kind: letters, digits, `.`, `_`, `-`, not starting with a symbol. */
export function isKindName(name: string): boolean {
  return KIND_NAME.test(name);
}

/** What a kind falls back on, from the cluster's options. */
export interface KindDefaults {
  readonly idleTimeoutMs: number;
  readonly maxQueueLength: number;
  /** The longest call deadline members accept (`remote.inbound.maxTimeoutMs`); undefined without a remote. */
  readonly maxRequestTimeoutMs?: number;
}

/** Everything the request path needs to know about one method, worked out once per kind. */
export interface MethodRoute {
  readonly kindName: string;
  /** The kind when this member hosts it; undefined for a kind known only by name (hosted elsewhere). */
  readonly kind: ClusterKind | undefined;
  readonly method: string;
  readonly interleaved: boolean;
  /** Safe to run twice: retried when the outcome of a remote call is unknown. */
  readonly idempotent: boolean;
}

/** A registered kind with its options resolved. */
export class ClusterKind<T extends object = object> {
  readonly name: string;
  /** `name/`: the start of the key (`kind/identity`) of each of its grains. */
  readonly keyPrefix: string;
  readonly callable: ReadonlySet<string>;
  readonly interleaved: ReadonlySet<string>;
  readonly interleaveAll: boolean;
  readonly idleTimeoutMs: number;
  readonly maxQueueLength: number;
  /** One route per callable method. */
  readonly routes: ReadonlyMap<string, MethodRoute>;
  readonly canActivate: ((identity: string) => boolean) | undefined;
  /** The deadline of calls made here that give none of their own; undefined: the cluster's `requestTimeout`. */
  readonly requestTimeoutMs: number | undefined;
  /** Where new activations go (`definition.placement`); undefined: wherever the identity lookup's own options say. */
  readonly placement: PlacementStrategy | undefined;

  constructor(
    readonly definition: KindDefinition<T>,
    defaults: KindDefaults,
  ) {
    if (!KIND_NAME.test(definition.name)) {
      throw new GrainConfigurationError(
        `Grain class "${definition.grainClass.name}": kind name "${definition.name}" is not valid; use letters, digits, ".", "_" and "-" (no "/").`,
      );
    }
    this.name = definition.name;
    this.keyPrefix = `${definition.name}/`;
    this.canActivate = definition.canActivate;
    this.callable = callableMethods(definition.grainClass, definition.callableBases);
    this.interleaveAll = definition.interleave === true;
    this.interleaved = new Set(definition.interleavedMethods ?? []);
    for (const method of this.interleaved) {
      if (!this.callable.has(method)) {
        throw new GrainConfigurationError(`Grain class "${definition.grainClass.name}": interleaved method "${method}" is not a callable method of the class.`);
      }
    }
    this.idleTimeoutMs =
      definition.idleTimeout === undefined ? defaults.idleTimeoutMs : toMs(definition.idleTimeout, `${definition.grainClass.name} idleTimeout`);
    this.requestTimeoutMs =
      definition.requestTimeout === undefined ? undefined : toMs(definition.requestTimeout, `${definition.grainClass.name} requestTimeout`);
    const maxRequestTimeoutMs = defaults.maxRequestTimeoutMs;
    if (this.requestTimeoutMs !== undefined && maxRequestTimeoutMs !== undefined && this.requestTimeoutMs > maxRequestTimeoutMs) {
      // NOTE: members refuse calls with a longer deadline: every remote call to the kind would fail.
      throw new GrainConfigurationError(
        `Grain class "${definition.grainClass.name}": requestTimeout (${this.requestTimeoutMs} ms) is longer than members accept (remote.inbound.maxTimeoutMs, ${maxRequestTimeoutMs} ms); raise remote.inbound.maxTimeoutMs on every member, or shorten it.`,
      );
    }
    this.placement =
      definition.placement === undefined ? undefined : placementStrategy(definition.placement, `Grain class "${definition.grainClass.name}" placement`);
    const idempotent = new Set(definition.idempotentMethods ?? []);
    for (const method of idempotent) {
      if (!this.callable.has(method)) {
        throw new GrainConfigurationError(`Grain class "${definition.grainClass.name}": idempotent method "${method}" is not a callable method of the class.`);
      }
    }
    this.routes = new Map(
      [...this.callable].map((method) => [
        method,
        { kindName: this.name, kind: this as ClusterKind, method, interleaved: this.isInterleaved(method), idempotent: idempotent.has(method) },
      ]),
    );
    this.maxQueueLength = definition.maxQueueLength ?? defaults.maxQueueLength;
    if (!Number.isInteger(this.maxQueueLength) || this.maxQueueLength < 1) {
      throw new GrainConfigurationError(`Grain class "${definition.grainClass.name}": maxQueueLength must be a positive integer.`);
    }
  }

  isInterleaved(method: string): boolean {
    return this.interleaveAll || this.interleaved.has(method);
  }
}
