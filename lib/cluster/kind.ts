import { callableMethods } from './callable-methods.js';
import { type Duration, toMs } from './duration.js';
import { GrainConfigurationError } from './errors.js';
import type { GrainContext } from './grain-context.js';

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
  readonly callable: ReadonlySet<string>;
  readonly interleaved: ReadonlySet<string>;
  readonly interleaveAll: boolean;
  readonly idleTimeoutMs: number;
  readonly maxQueueLength: number;
  /** One route per callable method. */
  readonly routes: ReadonlyMap<string, MethodRoute>;
  readonly canActivate: ((identity: string) => boolean) | undefined;

  constructor(
    readonly definition: KindDefinition<T>,
    defaults: { idleTimeoutMs: number; maxQueueLength: number },
  ) {
    if (!KIND_NAME.test(definition.name)) {
      throw new GrainConfigurationError(
        `Grain class "${definition.grainClass.name}": kind name "${definition.name}" is not valid; use letters, digits, ".", "_" and "-" (no "/").`,
      );
    }
    this.name = definition.name;
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
