/**
 * This member's lease in Redis: joining under the current generation (once it is a lease old,
 * by the Redis server's clock), rejoining as a new incarnation whenever what the member holds
 * can no longer be trusted (the lease or the generation is lost, a release failed), waiting
 * for it before claiming, fencing turns by it (`turnGuard`), and leaving. The renewals
 * themselves run on the LeaseKeeper's worker thread (lease-keeper.ts, lease-worker.js).
 */
import type { Redis, RedisOptions } from 'ioredis';
import { now } from '../../../actor/clock.js';
import { ClusterUnavailableError } from '../../errors.js';
import { leaseTurnGuard } from '../../fencing.js';
import type { LookupMember, TurnGuard } from '../identity-lookup.js';
import { type LeaseEnd, LeaseKeeper } from './lease-keeper.js';
import { readGeneration } from './redis-generation.js';
import type { RedisKeys } from './redis-keys.js';
import type { LeaseSettings } from './redis-lookup-options.js';
import { scripts } from './redis-scripts.js';

/** Longest pause between two attempts to join (it is otherwise two renewal intervals). */
const MAX_JOIN_RETRY_MS = 1_000;
/** How join.lua answers while the generation is younger than a lease: `EARLY:<ms left>`. */
const EARLY = 'EARLY:';
/** Why a member drops everything when its generation changed. */
const GENERATION_CHANGED = 'Redis lost data (generation changed)';

/** What the other parts of the lookup read of the lease; only the lease changes it. */
export interface LeaseState {
  /** The generation this member's claims are made under ('' before the first join). */
  readonly generation: string;
  /** Holds a lease now. */
  readonly joined: boolean;
  /** The lookup shut down: nothing more is sent. */
  readonly stopped: boolean;
}

/** What the lease works with once the member is set up. */
export interface LeaseContext {
  /** The lookup's connection (the renewals have their own, on the worker thread). */
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly member: Pick<LookupMember, 'incarnation' | 'fenceAll' | 'log'>;
}

/**
 * The lease of this member's current incarnation. Created with the lookup (its `turnGuard`
 * is needed before setup), bound to the connection at setup (`attach`), then joined.
 *
 * One join runs at a time. Whatever ends the lease (`rejoin`: lost, generation changed, a
 * release failed, Redis holds no lease for it) stops it counting as valid at once, has the
 * member drop what it held, and makes the join start over, also when one is under way, so
 * the member always comes back by itself.
 */
export class RedisLease implements LeaseState {
  /** Fencing at turn boundaries (fencing.ts): a turn starts only with MIN_TURN_MS left on the lease. */
  readonly turnGuard: TurnGuard;
  private readonly keeper: LeaseKeeper;
  private context: LeaseContext | undefined;
  private heldGeneration = '';
  /** Resolves when this member holds a lease and may claim; replaced while (re)joining. */
  private ready: Promise<void> = new Promise(() => {});
  /** Resolves `ready`; set from the start of a join until it holds a lease. */
  private resolveReady: (() => void) | undefined;
  private joining = false;
  /** The lease was ended while a join was under way: that join starts over. */
  private startOver = false;
  /** Why the member must drop what it holds before it joins again (see rejoin). */
  private pendingFence: string | undefined;
  /** Holds a lease now (the fast path of whenReady). */
  private isJoined = false;
  private isStopped = false;

  /**
   * @param settings validated lease timing
   * @param redisOptions the connection options the renewer thread connects with
   * @param commandTimeoutMs how long a claim without a deadline waits for the lease
   */
  constructor(
    private readonly settings: LeaseSettings,
    private readonly redisOptions: RedisOptions,
    private readonly commandTimeoutMs: number,
  ) {
    this.keeper = new LeaseKeeper(settings);
    this.turnGuard = leaseTurnGuard(this.keeper);
  }

  get generation(): string {
    return this.heldGeneration;
  }

  get joined(): boolean {
    return this.isJoined;
  }

  get stopped(): boolean {
    return this.isStopped;
  }

  /** Bind to the member's connection, keys and member (once, at setup; sends nothing). */
  attach(context: LeaseContext): void {
    this.context = context;
  }

  /**
   * Wait (until the call's deadline) for this member to hold a lease: undefined when it holds
   * one now (no promise, no turn of the microtask queue: every claim asks).
   */
  whenReady(deadline: number | undefined): Promise<void> | undefined {
    return this.isJoined ? undefined : this.waitForLease(deadline);
  }

  private async waitForLease(deadline: number | undefined): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const waitMs = Math.max(0, (deadline ?? now() + this.commandTimeoutMs) - now());
    try {
      await Promise.race([
        this.ready,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new ClusterUnavailableError('This member holds no lease yet (joining, or waiting out a Redis generation change). Retry.')),
            waitMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Take a lease for the member's current incarnation, under the current generation, once
   * that generation is a lease old by the Redis server's clock; retries until it holds one or
   * the lookup stops. Returns at once when a join is under way already.
   */
  async join(): Promise<void> {
    if (this.joining || this.isStopped) return;
    this.joining = true;
    this.isJoined = false;
    if (this.resolveReady === undefined) this.ready = new Promise<void>((resolve) => (this.resolveReady = resolve));
    try {
      while (!this.isStopped) {
        this.startOver = false;
        try {
          if (await this.joinOnce()) {
            this.isJoined = true;
            this.resolveReady?.();
            this.resolveReady = undefined;
            return;
          }
        } catch (error) {
          if (this.isStopped) return;
          this.context!.member.log('warn', `RedisIdentityLookup: joining failed (${(error as Error).message}); retrying.`);
          await sleep(Math.min(this.settings.renewIntervalMs * 2, MAX_JOIN_RETRY_MS));
        }
      }
    } finally {
      this.joining = false;
    }
  }

  /**
   * A script run under `generation` answered GEN: the generation changed under this member, so
   * rejoin — unless a join is under way (it reads the generation itself), or the member has
   * moved on to another generation since the script was sent.
   */
  generationChanged(generation: string): void {
    if (!this.joining && !this.isStopped && generation === this.heldGeneration) this.rejoin(GENERATION_CHANGED);
  }

  /**
   * What incarnation `incarnation` holds can no longer be trusted (a release failed, or Redis
   * holds no lease for it): drop everything and rejoin as a new incarnation. Nothing when the
   * member has moved on to another incarnation since.
   */
  lost(reason: string, incarnation: string): void {
    const member = this.context?.member;
    if (this.isStopped || member === undefined || member.incarnation !== incarnation) return;
    member.log('warn', `RedisIdentityLookup: ${reason}; dropping this member's activations and rejoining as a new incarnation.`);
    // NOTE: fenced at once, not once Redis answers again: calls held for the failed release must
    // not find the untrusted entry still owned by this incarnation.
    member.fenceAll(reason);
    this.rejoin();
  }

  /** The connection came back: Redis may have lost data meanwhile, so read the generation again. */
  async onReconnect(): Promise<void> {
    if (this.isStopped || this.joining || this.heldGeneration === '') return;
    const held = this.heldGeneration;
    try {
      const { generation } = await readGeneration(this.context!.redis, this.context!.keys.generation, this);
      // NOTE: a join may have started, or even finished under this very generation, while the
      // read was in flight: then it has read the generation itself.
      if (generation !== held) this.generationChanged(held);
    } catch {
      // The next reconnect tries again; scripts answer GEN meanwhile if it changed.
    }
  }

  /** Stop renewing, and leave: the lease goes at once. */
  async shutdown(): Promise<void> {
    this.isStopped = true;
    this.keeper.stop();
    const context = this.context;
    if (context !== undefined) {
      const { incarnation } = context.member;
      // Graceful leave: the lease goes at once, so what is left of this member's entries is replaceable.
      await scripts.leave.run(context.redis, [context.keys.lease(incarnation)], [incarnation]).catch(() => {});
    }
  }

  /** One attempt to join; true when the member holds a lease, false to start over. */
  private async joinOnce(): Promise<boolean> {
    const { redis, keys, member } = this.context!;
    const { generation, ageMs } = await readGeneration(redis, keys.generation, this);
    if (this.startOver) return false;
    if (this.pendingFence !== undefined) {
      member.fenceAll(this.pendingFence);
      this.pendingFence = undefined;
    }
    this.heldGeneration = generation;
    // NOTE: nothing is claimed until the generation is a lease old by Redis' clock, also on a
    // member's first join: a generation begins after Redis lost the one before, and every lease
    // of that one ends within a lease of its last renewal (join.lua refuses earlier joins too).
    const waitMs = this.settings.leaseMs - ageMs;
    if (waitMs > 0) await sleep(waitMs);
    if (this.startOver || this.isStopped) return false;
    const incarnation = member.incarnation;
    // NOTE: the scripts are looked up at each join, not kept: the e2e member's
    // BROKEN=unconditional-renewal swaps `scripts.renew` before the lookup starts.
    const joined = await this.keeper.start({
      redis: this.redisOptions,
      join: scripts.join,
      renew: scripts.renew,
      keys: [keys.generation, keys.lease(incarnation), keys.incarnations],
      args: [generation, incarnation, this.settings.leaseMs],
      onEnd: (why) => this.onLeaseEnd(why, incarnation),
    });
    if (joined.startsWith(EARLY)) {
      await sleep(Number(joined.slice(EARLY.length)));
      return false;
    }
    // NOTE: a lease ended while this join ran (see rejoin) belongs to an incarnation that is fenced.
    if (this.startOver || this.isStopped || member.incarnation !== incarnation) {
      if (joined === 'OK') this.keeper.stop();
      return false;
    }
    if (joined === 'GEN') return false;
    if (joined !== 'OK') throw new Error(`join answered ${joined}`);
    return true;
  }

  private onLeaseEnd(why: LeaseEnd, incarnation: string): void {
    const member = this.context!.member;
    if (this.isStopped || member.incarnation !== incarnation) return;
    member.log(
      'warn',
      `RedisIdentityLookup: ${why === 'generation' ? GENERATION_CHANGED : 'the lease lapsed'}; dropping this member's activations and rejoining as a new incarnation.`,
    );
    this.rejoin(why === 'generation' ? GENERATION_CHANGED : 'the lease was lost');
  }

  /**
   * Stop renewing what is lost and join again, as a new incarnation: the member drops what it
   * held (fenceAll, for `reason`) once the join has read the generation. A join under way starts
   * over: it may be joining the incarnation that is to be fenced.
   *
   * NOTE: until then no turn starts (the keeper no longer counts the lease valid) and peers are
   * answered "not here"; the incarnation changes only once Redis answers again, as it always did.
   */
  private rejoin(reason?: string): void {
    this.keeper.stop();
    this.isJoined = false;
    if (reason !== undefined) this.pendingFence = reason;
    this.startOver = true;
    void this.join();
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
