/**
 * The Redis identity lookup's public class: reads the options and composes the parts —
 * claims (redis-claims.ts), the lease (redis-lease.ts, with the generation of
 * redis-generation.ts), cleanup (redis-cleanup.ts) and the connection (redis-connection.ts).
 */
import type { Redis, RedisOptions } from 'ioredis';
import type { Pid } from '../../../actor/pid.js';
import { ClusterUnavailableError } from '../../errors.js';
import { type Placement, placementStrategy } from '../../placement/placement.js';
import type { PlacementStrategy } from '../../placement/placement-strategy.js';
import type { GetHint, IdentityLookup, LookupHealth, LookupMember, TurnGuard } from '../identity-lookup.js';
import { RedisClaims } from './redis-claims.js';
import { RedisCleanup } from './redis-cleanup.js';
import { checkEvictionPolicy, connect, openConnection } from './redis-connection.js';
import { RedisKeys } from './redis-keys.js';
import { RedisLease } from './redis-lease.js';
import { commandTimeoutMs, type LeaseSettings, leaseSettings, type RedisIdentityLookupOptions } from './redis-lookup-options.js';
import { parseRedisUrl } from './redis-url.js';

/** First part of every key's hash tag unless `keyPrefix` says otherwise. */
const DEFAULT_KEY_PREFIX = 'grains';
/** Where new activations go unless `placement` says otherwise. */
const DEFAULT_PLACEMENT: Placement = 'prefer-local';

/**
 * The identity lookup backed by Redis: the store is the single source of truth for where each
 * grain lives. What it guarantees, and under which conditions: docs/redis-lookup.md.
 *
 * - Claim first: one script writes {member, incarnation, activation, epoch} before the grain
 *   is constructed; only the claim holder constructs it. The epoch grows with every claim and
 *   survives passivation (`ctx.epoch`).
 * - Leases: each member incarnation holds a lease it renews by compare-and-extend from a
 *   worker thread; validity counts from the send time of the last acknowledged renewal.
 * - Only Redis decides staleness: an entry is replaced only when its incarnation's lease has
 *   lapsed or it was released.
 * - Fencing at turn boundaries (`turnGuard`): a turn starts only inside the lease, and a turn
 *   that settles after it drops its reply.
 * - A generation key detects Redis losing data (or being another Redis process); members
 *   then drop everything, and nobody claims until the generation is a lease old by Redis' clock.
 */
export class RedisIdentityLookup implements IdentityLookup {
  readonly name = 'redis';
  readonly turnGuard: TurnGuard;
  private readonly settings: LeaseSettings;
  private readonly redisOptions: RedisOptions;
  private readonly keyPrefix: string;
  private readonly placement: PlacementStrategy;
  private readonly placementByKind: ReadonlyMap<string, PlacementStrategy>;
  private readonly commandTimeoutMs: number;
  private readonly lease: RedisLease;
  private redis: Redis | undefined;
  private claims: RedisClaims | undefined;
  private cleanup: RedisCleanup | undefined;

  constructor(options: RedisIdentityLookupOptions = {}) {
    this.settings = leaseSettings(options.lease);
    this.redisOptions = { ...(options.url === undefined ? {} : parseRedisUrl(options.url)), ...options.redis };
    this.keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    this.placement = placementStrategy(options.placement ?? DEFAULT_PLACEMENT, 'RedisIdentityLookup placement');
    this.placementByKind = new Map(
      Object.entries(options.placementByKind ?? {}).map(([kind, p]) => [kind, placementStrategy(p, `RedisIdentityLookup placementByKind.${kind}`)]),
    );
    this.commandTimeoutMs = commandTimeoutMs(options);
    this.lease = new RedisLease(this.settings, this.redisOptions, this.commandTimeoutMs);
    this.turnGuard = this.lease.turnGuard;
  }

  /**
   * The generation this member's claims are made under ('' before the first join).
   * NOTE: for subclasses: the e2e member (test/support/members/redis-member.ts) fences its
   * grain's writes by it.
   */
  protected get generation(): string {
    return this.lease.generation;
  }

  async setup(member: LookupMember): Promise<void> {
    const keys = new RedisKeys(this.keyPrefix, member.clusterName);
    const redis = openConnection(this.redisOptions, this.commandTimeoutMs);
    this.redis = redis;
    // NOTE: the parts are bound before connecting, so a shutdown after a failed setup still
    // leaves and disconnects.
    this.lease.attach({ redis, keys, member });
    this.claims = new RedisClaims({ redis, keys, member, lease: this.lease, placement: this.placement, placementByKind: this.placementByKind });
    this.cleanup = new RedisCleanup({ redis, keys, member, lease: this.lease });
    await connect(redis);
    try {
      await checkEvictionPolicy(redis, member);
    } catch (error) {
      // NOTE: the member does not start, so nothing would close this connection later.
      redis.disconnect();
      throw error;
    }
    redis.on('ready', () => void this.lease.onReconnect());
    await this.lease.join();
    this.cleanup.start(this.settings.leaseMs);
  }

  /** Where `kind/identity` lives, claiming it here when it is placed here. */
  get(kind: string, identity: string, hint?: GetHint): Promise<Pid> {
    // NOTE: not async, so the claim's promise is the caller's (no extra promise per activation).
    const claims = this.claims;
    if (claims === undefined) return Promise.reject(new ClusterUnavailableError('The Redis identity lookup is not set up (its member has not started).'));
    return claims.get(kind, identity, hint);
  }

  async remove(kind: string, identity: string, pid: Pid, epoch: number): Promise<void> {
    await this.claims?.release(kind, identity, pid, epoch);
  }

  health(): LookupHealth {
    const status = this.redis?.status;
    const reachable = status === 'ready';
    const ready = reachable && this.lease.joined && !this.lease.stopped;
    if (ready) return { reachable, ready };
    return {
      reachable,
      ready,
      detail: !reachable
        ? `Redis connection is ${status ?? 'not open'}`
        : this.lease.stopped
          ? 'stopped'
          : 'no lease held yet (joining, or waiting out a Redis generation change)',
    };
  }

  async shutdown(): Promise<void> {
    this.cleanup?.stop();
    await this.lease.shutdown();
    this.redis?.disconnect();
  }

  /**
   * Remove what incarnations whose lease lapsed left behind, in small batches, so no script
   * blocks Redis for long. (Their entries are also replaced lazily by the next claim.)
   * Runs on a timer; callable directly (tests do).
   */
  async cleanupLapsed(): Promise<void> {
    await this.cleanup?.cleanupLapsed();
  }
}
