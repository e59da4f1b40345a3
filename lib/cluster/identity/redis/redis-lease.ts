/**
 * This member's lease in Redis: joining under the current generation, rejoining as a new
 * incarnation when the lease or the generation is lost, waiting for it before claiming,
 * fencing turns by it (`turnGuard`), and leaving. The renewals themselves run on the
 * LeaseKeeper's worker thread (lease-keeper.ts, lease-worker.js).
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
 */
export class RedisLease implements LeaseState {
  /** Fencing at turn boundaries (fencing.ts): a turn starts only with MIN_TURN_MS left on the lease. */
  readonly turnGuard: TurnGuard;
  private readonly keeper: LeaseKeeper;
  private context: LeaseContext | undefined;
  private heldGeneration = '';
  /** Resolves when this member holds a lease and may claim; replaced while (re)joining. */
  private ready: Promise<void> = new Promise(() => {});
  private joining = false;
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

  /** Wait (until the call's deadline) for this member to hold a lease. */
  async whenReady(deadline: number | undefined): Promise<void> {
    if (this.isJoined) return;
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
   * Take a lease for the member's current incarnation, under the current generation; retries
   * until it holds one or the lookup stops. `afterLoss`: the previous lease was lost, so what
   * the member held is fenced first.
   */
  async join(afterLoss: boolean): Promise<void> {
    if (this.joining || this.isStopped) return;
    this.joining = true;
    this.isJoined = false;
    let release!: () => void;
    this.ready = new Promise<void>((resolve) => (release = resolve));
    try {
      for (;;) {
        const { redis, keys, member } = this.context!;
        try {
          const { generation, changed } = await readGeneration(redis, keys.generation, this);
          if (changed || afterLoss) {
            // NOTE: whatever this member held belongs to a lease (or generation) that is gone.
            member.fenceAll(changed ? 'Redis lost data (generation changed)' : 'the lease was lost');
          }
          if (changed) {
            this.heldGeneration = generation;
            // Nobody claims until a full lease period has passed: members of the old
            // generation must have noticed and stopped first.
            await sleep(this.settings.leaseMs);
          }
          this.heldGeneration = generation;
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
          if (joined === 'GEN') continue;
          if (joined !== 'OK') throw new Error(`join answered ${joined}`);
          this.isJoined = true;
          release();
          return;
        } catch (error) {
          if (this.isStopped) return;
          member.log('warn', `RedisIdentityLookup: joining failed (${(error as Error).message}); retrying.`);
          await sleep(Math.min(this.settings.renewIntervalMs * 2, MAX_JOIN_RETRY_MS));
        }
      }
    } finally {
      this.joining = false;
    }
  }

  /** A script answered GEN: the generation changed under this member, so rejoin (unless joining already). */
  generationChanged(): void {
    if (!this.joining) this.rejoin();
  }

  /** The connection came back: Redis may have lost data meanwhile, so read the generation again. */
  async onReconnect(): Promise<void> {
    if (this.isStopped || this.joining || this.heldGeneration === '') return;
    try {
      const { changed } = await readGeneration(this.context!.redis, this.context!.keys.generation, this);
      if (changed) this.rejoin();
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

  private onLeaseEnd(why: LeaseEnd, incarnation: string): void {
    const member = this.context!.member;
    if (this.isStopped || member.incarnation !== incarnation) return;
    member.log(
      'warn',
      `RedisIdentityLookup: ${why === 'generation' ? 'Redis lost data (generation changed)' : 'the lease lapsed'}; dropping this member's activations and rejoining as a new incarnation.`,
    );
    this.rejoin();
  }

  /** Stop renewing what is lost and join again (fencing this member's activations first). */
  private rejoin(): void {
    this.keeper.stop();
    this.isJoined = false;
    void this.join(true);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
