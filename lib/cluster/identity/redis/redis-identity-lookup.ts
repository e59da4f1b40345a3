import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { now } from '../../../actor/clock.js';
import type { Pid } from '../../../actor/pid.js';
import { ClusterUnavailableError, GrainConfigurationError, UnknownKindError } from '../../errors.js';
import type { GetHint, IdentityLookup, LookupMember, TurnGuard } from '../identity-lookup.js';
import { type LeaseEnd, LeaseKeeper } from './lease-keeper.js';
import { RedisKeys } from './redis-keys.js';
import { type LeaseSettings, leaseSettings, type RedisIdentityLookupOptions } from './redis-lookup-options.js';
import { placementStrategy } from '../../placement/placement.js';
import { membersHosting, type PlacementStrategy } from '../../placement/placement-strategy.js';
import { scripts } from './redis-scripts.js';

/** Room a turn must have left on the lease to start. */
const MIN_TURN_MS = 20;
/** Entries removed per cleanup script run. */
const CLEANUP_BATCH = 100;
/** How often (in lease periods) a member looks for lapsed incarnations' entries to remove. */
const CLEANUP_EVERY_LEASES = 20;

type Reply = Array<string | null>;

/**
 * The identity lookup backed by Redis: the store is the single source of truth for where each
 * grain lives, and promises no duplicate activation on a single Redis primary.
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
 * - A generation key detects Redis losing data; members then drop everything and nobody
 *   claims until a lease period has passed.
 */
export class RedisIdentityLookup implements IdentityLookup {
  readonly name = 'redis';
  readonly turnGuard: TurnGuard;
  private readonly lease: LeaseSettings;
  private readonly redisOptions: RedisOptions;
  private readonly keyPrefix: string;
  private readonly placement: PlacementStrategy;
  private readonly placementByKind: ReadonlyMap<string, PlacementStrategy>;
  private readonly commandTimeoutMs: number;
  private readonly keeper: LeaseKeeper;
  private redis: Redis | undefined;
  private keys: RedisKeys | undefined;
  private member: LookupMember | undefined;
  private generation = '';
  /** Resolves when this member holds a lease and may claim; replaced while (re)joining. */
  private ready: Promise<void> = new Promise(() => {});
  private joining = false;
  /** Holds a lease now (the fast path of whenReady). */
  private joined = false;
  private stopped = false;
  private cleanupTimer: NodeJS.Timeout | undefined;

  constructor(options: RedisIdentityLookupOptions = {}) {
    this.lease = leaseSettings(options.lease);
    const { leaseMs, renewIntervalMs, marginMs, stallToleranceMs } = this.lease;
    if (!(renewIntervalMs > 0 && marginMs >= 0 && leaseMs > renewIntervalMs + marginMs && stallToleranceMs > 0 && stallToleranceMs < leaseMs)) {
      throw new GrainConfigurationError(`RedisIdentityLookup lease: need 0 < renewIntervalMs, renewIntervalMs + marginMs < leaseMs and 0 < stallToleranceMs < leaseMs; got ${JSON.stringify(this.lease)}.`);
    }
    this.redisOptions = { ...(options.url === undefined ? {} : parseUrl(options.url)), ...options.redis };
    this.keyPrefix = options.keyPrefix ?? 'grains';
    this.placement = placementStrategy(options.placement ?? 'prefer-local', 'RedisIdentityLookup placement');
    this.placementByKind = new Map(Object.entries(options.placementByKind ?? {}).map(([kind, p]) => [kind, placementStrategy(p, `RedisIdentityLookup placementByKind.${kind}`)]));
    this.commandTimeoutMs = options.commandTimeoutMs ?? 1_000;
    this.keeper = new LeaseKeeper(this.lease);
    const keeper = this.keeper;
    this.turnGuard = {
      canStart: (at) => keeper.validFor(MIN_TURN_MS, at),
      canSettle: (at) => keeper.validFor(0, at),
    };
  }

  async setup(member: LookupMember): Promise<void> {
    this.member = member;
    this.keys = new RedisKeys(this.keyPrefix, member.clusterName);
    const redis = new Redis({
      ...this.redisOptions,
      // NOTE: lookup commands never wait in an offline queue or get resent after a
      // reconnect: a call fails (typed) within its deadline instead of claiming late.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      commandTimeout: this.commandTimeoutMs,
      lazyConnect: true,
    });
    redis.on('error', () => {});
    this.redis = redis;
    try {
      await redis.connect();
    } catch (error) {
      redis.disconnect();
      throw new ClusterUnavailableError(`RedisIdentityLookup could not connect to Redis: ${(error as Error).message}`);
    }
    await this.checkEvictionPolicy();
    redis.on('ready', () => void this.onReconnect());
    await this.join(false);
    this.cleanupTimer = setInterval(() => void this.cleanupLapsed(), this.lease.leaseMs * CLEANUP_EVERY_LEASES);
    this.cleanupTimer.unref();
  }

  /** Where `kind/identity` lives, claiming it here when it is placed here. */
  async get(kind: string, identity: string, hint?: GetHint): Promise<Pid> {
    const member = this.member!;
    const name = `${kind}/${identity}`;
    // NOTE: an inbound call was placed here by its caller: claim here (the claim finds a live owner if any).
    if (hint?.inbound === true && member.hostsKind(kind)) return this.claim(kind, identity, name, hint.deadline);
    const target = this.placementOf(kind).place(kind, identity, membersHosting(member.members(), kind), member.self());
    if (target !== undefined && target.id === member.memberId) return this.claim(kind, identity, name, hint?.deadline);
    const resolved = await this.run(() => scripts.resolve.run(this.redis!, [this.keys!.generation, this.keys!.entry(name)], [this.generation, this.keys!.leasePrefix]));
    if (resolved[0] === 'OWNED') return this.ownedPid(kind, identity, resolved);
    if (resolved[0] === 'GEN') throw this.generationChanged();
    if (target === undefined) throw new UnknownKindError(kind);
    return { memberId: target.id, incarnation: target.incarnation, address: target.address, id: '' };
  }

  async remove(kind: string, identity: string, pid: Pid, epoch: number): Promise<void> {
    const keys = this.keys;
    const redis = this.redis;
    if (keys === undefined || redis === undefined || this.stopped || pid.incarnation === undefined) return;
    const name = `${kind}/${identity}`;
    try {
      await scripts.release.run(redis, [keys.generation, keys.entry(name), keys.activations(pid.incarnation)], [this.generation, pid.incarnation, epoch, name]);
    } catch {
      // NOTE: a release that fails leaves the entry to lapse with this incarnation's lease;
      // until then calls for the grain find it owned by an incarnation of this member.
      if (pid.incarnation === this.member?.incarnation) this.member.fenceAll(`releasing ${name} failed, so its entry cannot be trusted`);
    }
  }

  async shutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.cleanupTimer);
    this.keeper.stop();
    const redis = this.redis;
    const member = this.member;
    if (redis !== undefined && member !== undefined && this.keys !== undefined) {
      // Graceful leave: the lease goes at once, so what is left of this member's entries is replaceable.
      await scripts.leave.run(redis, [this.keys.lease(member.incarnation)], [member.incarnation]).catch(() => {});
    }
    redis?.disconnect();
  }

  // Internals --------------------------------------------------------------------------------

  private async claim(kind: string, identity: string, name: string, deadline: number | undefined): Promise<Pid> {
    await this.whenReady(deadline);
    const member = this.member!;
    const keys = this.keys!;
    const incarnation = member.incarnation;
    const activationId = member.newActivationId();
    const reply = await this.run(() =>
      scripts.claim.run(this.redis!, [keys.generation, keys.entry(name), keys.lease(incarnation), keys.activations(incarnation)], [
        this.generation,
        incarnation,
        member.memberId,
        member.self().address,
        activationId,
        keys.leasePrefix,
        name,
        epochFloor(this.generation),
      ]),
    );
    switch (reply[0]) {
      case 'CLAIMED':
        if (member.incarnation !== incarnation) throw new ClusterUnavailableError(`The lease of this member changed while claiming ${name}; retry.`);
        return member.activateLocal(kind, identity, Number(reply[1]), activationId);
      case 'OWNED':
        return this.ownedPid(kind, identity, reply);
      case 'GEN':
        throw this.generationChanged();
      default:
        throw new ClusterUnavailableError(`This member's lease is gone (${String(reply[0])}); it is rejoining. Retry.`);
    }
  }

  private ownedPid(kind: string, identity: string, reply: Reply): Pid {
    const member = this.member!;
    const [, memberId, incarnation, address, activation, epoch] = reply;
    if (memberId == null || incarnation == null || activation == null || epoch == null) throw new ClusterUnavailableError(`Redis returned an incomplete entry for ${kind}/${identity}.`);
    if (incarnation === member.incarnation) {
      // Ours: the activation exists here, or is being re-created for the same claim.
      return member.activateLocal(kind, identity, Number(epoch), activation);
    }
    return { memberId, incarnation, address: address ?? '', id: activation };
  }

  private placementOf(kind: string): PlacementStrategy {
    return this.placementByKind.get(kind) ?? this.placement;
  }

  /** Run one lookup command; any Redis failure is ClusterUnavailableError, any odd reply too. */
  private async run(command: () => Promise<unknown>): Promise<Reply> {
    let reply: unknown;
    try {
      reply = await command();
    } catch (error) {
      throw new ClusterUnavailableError(`Redis did not answer the identity lookup: ${(error as Error).message}`);
    }
    if (!Array.isArray(reply) || reply.some((v) => v !== null && typeof v !== 'string' && typeof v !== 'number')) {
      throw new ClusterUnavailableError(`Redis returned a malformed lookup reply: ${JSON.stringify(reply)}`);
    }
    return reply.map((v) => (v === null ? null : String(v)));
  }

  /** Wait (until the call's deadline) for this member to hold a lease. */
  private async whenReady(deadline: number | undefined): Promise<void> {
    if (this.joined) return;
    let timer: NodeJS.Timeout | undefined;
    const waitMs = Math.max(0, (deadline ?? now() + this.commandTimeoutMs) - now());
    try {
      await Promise.race([
        this.ready,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new ClusterUnavailableError('This member holds no lease yet (joining, or waiting out a Redis generation change). Retry.')), waitMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async checkEvictionPolicy(): Promise<void> {
    let reply: unknown;
    try {
      reply = await this.redis!.config('GET', 'maxmemory-policy');
    } catch {
      this.member!.log('warn', 'RedisIdentityLookup could not read maxmemory-policy (CONFIG is disabled?). It must be "noeviction": an evicted entry would allow a second activation.');
      return;
    }
    const policy = Array.isArray(reply) ? reply[1] : undefined;
    if (policy !== 'noeviction') {
      throw new GrainConfigurationError(`Redis maxmemory-policy is "${String(policy)}"; RedisIdentityLookup requires "noeviction" (an evicted entry would allow a second activation). Set it with CONFIG SET maxmemory-policy noeviction or in redis.conf.`);
    }
  }

  /** Read (or create) the generation; a change means Redis lost data. */
  private async readGeneration(): Promise<{ generation: string; changed: boolean }> {
    const redis = this.redis!;
    const runId = parseRunId(String(await redis.info('server')));
    const current = await redis.get(this.keys!.generation);
    if (current !== null && current.endsWith(`:${runId}`)) return { generation: current, changed: current !== this.generation && this.generation !== '' };
    // Missing (data lost) or written by another Redis process (failover): a new generation.
    // NOTE: the generation records when it began (ms since 1970): its epochs start there.
    const fresh = `${randomBytes(8).toString('hex')}:${Date.now()}:${runId}`;
    const swapped = await redis.eval(
      "local g = redis.call('GET', KEYS[1]) if g == false or g == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return ARGV[2] end return g",
      1,
      this.keys!.generation,
      current ?? '',
      fresh,
    );
    const generation = String(swapped);
    return { generation, changed: this.generation !== '' };
  }

  private async join(afterLoss: boolean): Promise<void> {
    if (this.joining || this.stopped) return;
    this.joining = true;
    this.joined = false;
    let release!: () => void;
    this.ready = new Promise<void>((resolve) => (release = resolve));
    try {
      for (;;) {
        try {
          const { generation, changed } = await this.readGeneration();
          if (changed || afterLoss) {
            // NOTE: whatever this member held belongs to a lease (or generation) that is gone.
            this.member!.fenceAll(changed ? 'Redis lost data (generation changed)' : 'the lease was lost');
          }
          if (changed) {
            this.generation = generation;
            // Nobody claims until a full lease period has passed: members of the old
            // generation must have noticed and stopped first.
            await sleep(this.lease.leaseMs);
          }
          this.generation = generation;
          const incarnation = this.member!.incarnation;
          const keys = this.keys!;
          const joined = await this.keeper.start({
            redis: this.redisOptions,
            join: scripts.join,
            renew: scripts.renew,
            keys: [keys.generation, keys.lease(incarnation), keys.incarnations],
            args: [generation, incarnation, this.lease.leaseMs],
            onEnd: (why) => this.onLeaseEnd(why, incarnation),
          });
          if (joined === 'GEN') continue;
          if (joined !== 'OK') throw new Error(`join answered ${joined}`);
          this.joined = true;
          release();
          return;
        } catch (error) {
          if (this.stopped) return;
          this.member!.log('warn', `RedisIdentityLookup: joining failed (${(error as Error).message}); retrying.`);
          await sleep(Math.min(this.lease.renewIntervalMs * 2, 1_000));
        }
      }
    } finally {
      this.joining = false;
    }
  }

  private onLeaseEnd(why: LeaseEnd, incarnation: string): void {
    if (this.stopped || this.member!.incarnation !== incarnation) return;
    this.member!.log('warn', `RedisIdentityLookup: ${why === 'generation' ? 'Redis lost data (generation changed)' : 'the lease lapsed'}; dropping this member's activations and rejoining as a new incarnation.`);
    this.rejoin();
  }

  /** Stop renewing what is lost and join again (fencing this member's activations first). */
  private rejoin(): void {
    this.keeper.stop();
    this.joined = false;
    void this.join(true);
  }

  private async onReconnect(): Promise<void> {
    if (this.stopped || this.joining || this.generation === '') return;
    try {
      const { changed } = await this.readGeneration();
      if (changed) this.rejoin();
    } catch {
      // The next reconnect tries again; scripts answer GEN meanwhile if it changed.
    }
  }

  private generationChanged(): ClusterUnavailableError {
    if (!this.joining) this.rejoin();
    return new ClusterUnavailableError('Redis lost data (its generation changed); this member is rejoining and claims nothing for a lease period. Retry.');
  }

  /**
   * Remove what incarnations whose lease lapsed left behind, in small batches, so no script
   * blocks Redis for long. (Their entries are also replaced lazily by the next claim.)
   */
  async cleanupLapsed(): Promise<void> {
    const keys = this.keys;
    const redis = this.redis;
    if (keys === undefined || redis === undefined || this.stopped || !this.joined) return;
    try {
      const incarnations = await redis.smembers(keys.incarnations);
      for (const incarnation of incarnations) {
        if (this.stopped) return;
        if (incarnation !== this.member!.incarnation) await this.cleanup(incarnation);
      }
    } catch {
      // Best effort: the next round tries again.
    }
  }

  private async cleanup(incarnation: string): Promise<void> {
    const keys = this.keys!;
    for (let left = 1; left > 0; ) {
      const reply = await scripts.cleanup.run(this.redis!, [keys.generation, keys.activations(incarnation), keys.lease(incarnation), keys.incarnations], [this.generation, keys.entryPrefix, CLEANUP_BATCH, incarnation]);
      if (typeof reply !== 'number') return;
      left = reply;
    }
  }
}

/**
 * Where a generation's epochs start: the time it began. Epochs of a lost generation stay
 * below it as long as an identity was activated less than once per millisecond on average
 * while that generation lasted, so `ctx.epoch` keeps growing across a Redis data loss.
 */
function epochFloor(generation: string): number {
  const parts = generation.split(':');
  const floor = parts.length >= 3 ? Number(parts[parts.length - 2]) : 0;
  return Number.isSafeInteger(floor) && floor > 0 ? floor : 0;
}

function parseRunId(info: string): string {
  const match = /run_id:([0-9a-f]+)/.exec(info);
  if (match === null) throw new Error('INFO server has no run_id');
  return match[1]!;
}

function parseUrl(url: string): RedisOptions {
  const parsed = new URL(url);
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new GrainConfigurationError(`RedisIdentityLookup url "${url}" must start with redis:// or rediss://.`);
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : undefined;
  return {
    host: parsed.hostname,
    port: parsed.port === '' ? 6379 : Number(parsed.port),
    ...(parsed.username !== '' && { username: decodeURIComponent(parsed.username) }),
    ...(parsed.password !== '' && { password: decodeURIComponent(parsed.password) }),
    ...(db !== undefined && Number.isInteger(db) && { db }),
    ...(parsed.protocol === 'rediss:' && { tls: {} }),
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
