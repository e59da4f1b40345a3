/** The options of RedisIdentityLookup: their types, defaults, and how they are read. */
import type { RedisOptions } from 'ioredis';
import { type Duration, toMs } from '../../duration.js';
import { GrainConfigurationError } from '../../errors.js';
import type { Placement } from '../../placement/placement.js';
import type { PlacementStrategy } from '../../placement/placement-strategy.js';

export type { Placement };

/** How member leases are kept. */
export interface LeaseSettings {
  /** How long a lease lasts after each renewal, in Redis. */
  readonly leaseMs: number;
  /** How often the lease is renewed. */
  readonly renewIntervalMs: number;
  /**
   * Safety margin: a member counts its lease valid until the *send time* of its last
   * acknowledged renewal + leaseMs − marginMs, so it stops before Redis lets it lapse even if
   * the renewal reply was slow.
   */
  readonly marginMs: number;
  /**
   * Renewals continue only while the member's event loop has ticked within this long: a
   * stalled (or SIGSTOPped) member loses its lease; a busy one with short stalls keeps it.
   */
  readonly stallToleranceMs: number;
}

/** Failover after a crash well within 2 s; tolerates event-loop stalls up to 750 ms. */
export const FAST_LEASE: LeaseSettings = { leaseMs: 1_500, renewIntervalMs: 250, marginMs: 250, stallToleranceMs: 750 };
/** Slower and safer: failover within about 6 s; tolerates stalls up to 2.5 s and slow Redis replies. */
export const SAFE_LEASE: LeaseSettings = { leaseMs: 5_000, renewIntervalMs: 1_000, marginMs: 1_000, stallToleranceMs: 2_500 };

/** How long a lookup command may take when neither `commandTimeout` nor `commandTimeoutMs` is given. */
export const DEFAULT_COMMAND_TIMEOUT: Duration = '1s';

/** Options of `RedisIdentityLookup`. */
export interface RedisIdentityLookupOptions {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://…` for TLS. */
  url?: string;
  /**
   * ioredis options (host, port, username, password, tls, db, …); merged over `url`. Not
   * ioredis' `keyPrefix` (refused at start: use this lookup's `keyPrefix`); `stringNumbers` is
   * always off on the lookup's connections.
   */
  redis?: RedisOptions;
  /** First part of every key; all keys of one cluster share the hash tag `{keyPrefix:cluster}`. @default 'grains' */
  keyPrefix?: string;
  /** Lease timing: `'fast'` (FAST_LEASE), `'safe'` (SAFE_LEASE) or your own. @default 'fast' */
  lease?: 'fast' | 'safe' | LeaseSettings;
  /**
   * Where new activations go: `'prefer-local'` (this member when it hosts the kind, else a
   * random member hosting it), `'random'`, `'rendezvous'` (hash of the identity over the
   * members hosting the kind), or a `PlacementStrategy` of your own. A kind's own
   * `@Grain({ placement })` wins over it on the members that host the kind. @default 'prefer-local'
   */
  placement?: Placement | PlacementStrategy;
  /**
   * Per-kind placement, overriding both `placement` and the kind's own `@Grain({ placement })`.
   * The same on every member, so it also applies where the kind is called without being hosted.
   */
  placementByKind?: Readonly<Record<string, Placement | PlacementStrategy>>;
  /** Longest a lookup command may take before the call fails with ClusterUnavailableError. @default '1s' */
  commandTimeout?: Duration;
  /**
   * Longest a lookup command may take, in milliseconds; `commandTimeout` wins when both are given.
   * @deprecated use commandTimeout
   */
  commandTimeoutMs?: number;
}

/** The lease settings an option names; throws GrainConfigurationError when they cannot work. */
export function leaseSettings(option: RedisIdentityLookupOptions['lease']): LeaseSettings {
  const lease = option === undefined || option === 'fast' ? FAST_LEASE : option === 'safe' ? SAFE_LEASE : option;
  const { leaseMs, renewIntervalMs, marginMs, stallToleranceMs } = lease;
  if (!(renewIntervalMs > 0 && marginMs >= 0 && leaseMs > renewIntervalMs + marginMs && stallToleranceMs > 0 && stallToleranceMs < leaseMs)) {
    throw new GrainConfigurationError(
      `RedisIdentityLookup lease: need 0 < renewIntervalMs, renewIntervalMs + marginMs < leaseMs and 0 < stallToleranceMs < leaseMs; got ${JSON.stringify(lease)}.`,
    );
  }
  return lease;
}

/**
 * The lookup command timeout in milliseconds: `commandTimeout`, else the deprecated
 * `commandTimeoutMs`, else DEFAULT_COMMAND_TIMEOUT.
 *
 * NOTE: `commandTimeoutMs` is taken as it is, unchecked, exactly as before it was deprecated;
 * only the new `commandTimeout` goes through `toMs` (a positive, finite duration).
 */
export function commandTimeoutMs(options: Pick<RedisIdentityLookupOptions, 'commandTimeout' | 'commandTimeoutMs'>): number {
  if (options.commandTimeout !== undefined) return toMs(options.commandTimeout, 'RedisIdentityLookup commandTimeout');
  return options.commandTimeoutMs ?? toMs(DEFAULT_COMMAND_TIMEOUT, 'RedisIdentityLookup commandTimeout');
}
