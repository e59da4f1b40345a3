import { SetMetadata } from '@nestjs/common';
import { declareCallableBases } from '../../cluster/callable-methods.js';
import type { Duration } from '../../cluster/duration.js';
import { GrainConfigurationError } from '../../cluster/errors.js';
import type { GrainClass } from '../../cluster/kind.js';
import type { Placement } from '../../cluster/placement/placement.js';
import type { PlacementStrategy } from '../../cluster/placement/placement-strategy.js';
import { GRAIN_METADATA } from '../cluster.constants.js';

/** Options of `@Grain()`. */
export interface GrainOptions {
  /**
   * The kind name, unique in the cluster. @default the class name without a trailing
   * "Grain", in kebab-case: `AccountGrain` → `account`, `UserProfileGrain` → `user-profile`.
   * Set it explicitly when a bundler may rename classes.
   */
  kind?: string;
  /** Deactivate an activation after this long without calls. @default the module's `idleTimeout` ('15m') */
  idleTimeout?: Duration;
  /** Calls that may wait per activation. @default the module's `maxQueueLength` (10000) */
  maxQueueLength?: number;
  /**
   * The deadline of a call to this kind that gives no `timeout` of its own. It applies on the
   * members that host the kind (`forFeature([TheGrain])`); a member that calls the kind by name
   * only (`forFeature(['the-kind'])`) does not know this class, and uses its own
   * `requestTimeout`. No longer than `remote.inbound.maxTimeoutMs`. @default the module's
   * `requestTimeout` ('10s')
   */
  requestTimeout?: Duration;
  /**
   * Where `RedisIdentityLookup` places new activations of this kind: `'prefer-local'`,
   * `'random'`, `'rendezvous'`, `'least-loaded'` or a `PlacementStrategy`. The lookup's
   * `placementByKind` entry for the kind wins over it; members that call the kind without
   * hosting it place by the lookup's options. Other lookups place by their own rule (hash).
   * @default the lookup's `placement` ('prefer-local')
   */
  placement?: Placement | PlacementStrategy;
  /**
   * Let every method of the kind interleave (a re-entrant kind): calls no longer wait for
   * each other's turns. @default false; use `@Interleave()` on single methods instead.
   */
  interleave?: boolean;
  /**
   * Refuse identities before anything is stored or constructed: a call for a refused
   * identity fails with `GrainIdentityRefusedError`. Synchronous; a throw counts as a refusal.
   */
  canActivate?: (identity: string) => boolean;
  /**
   * The base classes whose methods are callable, besides the class's own; the first base
   * class not listed ends them. Only needed when the grain extends a class from a package,
   * which nothing at run time tells from the app's: list the app's own base classes (often
   * none: `[]`) and the package's methods stay uncallable. @default every base class up to
   * the first built-in one (`EventEmitter`, streams, `Object`, …), which never counts
   */
  callableBases?: readonly GrainClass[];
}

/** What `@Grain()` stores: the options with the kind resolved. */
export interface GrainMetadata extends GrainOptions {
  kind: string;
}

/** `AccountGrain` → `account`; `UserProfileGrain` → `user-profile`. */
export function defaultKindName(className: string): string {
  const base = className.endsWith('Grain') && className.length > 'Grain'.length ? className.slice(0, -'Grain'.length) : className;
  return base
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1-$2')
    .toLowerCase();
}

/**
 * Marks a class as a grain kind. Host it with `ClusterModule.forFeature([TheGrain])`.
 * One instance per activation, constructed with Nest DI (singleton dependencies, resolved
 * once per kind) and `@InjectGrainContext()`. Stores metadata only: the options are checked
 * when a member hosting the kind starts (a GrainConfigurationError naming the class).
 */
export function Grain(options: GrainOptions = {}): ClassDecorator {
  return (target) => {
    const kind = options.kind ?? defaultKindName(target.name);
    if (kind.length === 0) throw new GrainConfigurationError('@Grain(): the kind name is empty; pass @Grain({ kind: "..." }).');
    declareCallableBases(target as unknown as GrainClass, options.callableBases);
    SetMetadata<string, GrainMetadata>(GRAIN_METADATA, { ...options, kind })(target);
  };
}
