/**
 * Cleanup: now and then, remove the entries that incarnations whose lease lapsed left behind,
 * in small batches, so they do not pile up (the next claim of such an identity replaces its
 * entry anyway).
 */
import type { Redis } from 'ioredis';
import type { LookupMember } from '../identity-lookup.js';
import type { RedisKeys } from './redis-keys.js';
import type { LeaseState } from './redis-lease.js';
import { scripts } from './redis-scripts.js';

/** Entries removed per cleanup script run. */
const CLEANUP_BATCH = 100;
/** How often (in lease periods) a member looks for lapsed incarnations' entries to remove. */
const CLEANUP_EVERY_LEASES = 20;

/** What cleanup works with. */
export interface CleanupContext {
  readonly redis: Redis;
  readonly keys: RedisKeys;
  /** Whose own incarnation is never cleaned up. */
  readonly member: Pick<LookupMember, 'incarnation'>;
  readonly lease: LeaseState;
}

/** The periodic removal of lapsed incarnations' entries. */
export class RedisCleanup {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly context: CleanupContext) {}

  /** Clean up every CLEANUP_EVERY_LEASES lease periods (the timer does not hold the process open). */
  start(leaseMs: number): void {
    this.timer = setInterval(() => void this.cleanupLapsed(), leaseMs * CLEANUP_EVERY_LEASES);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * Remove what incarnations whose lease lapsed left behind, in small batches, so no script
   * blocks Redis for long. (Their entries are also replaced lazily by the next claim.)
   */
  async cleanupLapsed(): Promise<void> {
    const { redis, keys, member, lease } = this.context;
    if (lease.stopped || !lease.joined) return;
    try {
      const incarnations = await redis.smembers(keys.incarnations);
      for (const incarnation of incarnations) {
        if (lease.stopped) return;
        if (incarnation !== member.incarnation) await this.cleanup(incarnation);
      }
    } catch {
      // Best effort: the next round tries again.
    }
  }

  private async cleanup(incarnation: string): Promise<void> {
    const { redis, keys, lease } = this.context;
    for (let left = 1; left > 0;) {
      const reply = await scripts.cleanup.run(
        redis,
        [keys.generation, keys.activations(incarnation), keys.lease(incarnation), keys.incarnations],
        [lease.generation, keys.entryPrefix, CLEANUP_BATCH, incarnation],
      );
      if (typeof reply !== 'number') return;
      left = reply;
    }
  }
}
