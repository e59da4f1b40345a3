/**
 * Claims: where an identity lives (resolve), claiming it for this member when it is placed
 * here (claim first: the claim is written before the grain is constructed), and releasing
 * the claim when the activation ends. Every Redis failure and every malformed reply is
 * ClusterUnavailableError.
 */
import type { Redis } from 'ioredis';
import type { Pid } from '../../../actor/pid.js';
import { LookupMetrics, type LookupScript } from '../../../observability/lookup-metrics.js';
import { ClusterUnavailableError, UnknownKindError } from '../../errors.js';
import { HostingMembers, includesMember, membersHosting, type PlacementContext, type PlacementStrategy } from '../../placement/placement-strategy.js';
import type { Member } from '../../providers/cluster-provider.js';
import type { GetHint, LookupMember } from '../identity-lookup.js';
import type { RedisKeys } from './redis-keys.js';
import type { LeaseState } from './redis-lease.js';
import { scripts } from './redis-scripts.js';

/** A script's reply, each element as a string (or null). */
type Reply = Array<string | null>;

/** One claim's reply: its epoch when claimed here (a whole number), else a Reply (OWNED, NOLEASE, ERR, GEN). */
type ClaimReply = number | Reply;

/** What claiming needs of the lease (redis-lease.ts). */
export interface ClaimLease extends LeaseState {
  /** Wait (until the call's deadline) for this member to hold a lease; undefined when it holds one now. */
  whenReady(deadline: number | undefined): Promise<void> | undefined;
  /** A script run under `generation` answered GEN: rejoin (unless the member moved on since). */
  generationChanged(generation: string): void;
  /** What `incarnation` holds cannot be trusted any more: rejoin as a new incarnation (unless it moved on since). */
  lost(reason: string, incarnation: string): void;
}

/** What claims work with. */
export interface ClaimsContext {
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly member: LookupMember;
  readonly lease: ClaimLease;
  /** Where new activations go unless `placementByKind` names the kind or the kind declares its own. */
  readonly placement: PlacementStrategy;
  readonly placementByKind: ReadonlyMap<string, PlacementStrategy>;
}

/** The lookup's claims on identities, for one member. */
export class RedisClaims {
  private readonly redis: Redis;
  private readonly keys: RedisKeys;
  private readonly member: LookupMember;
  private readonly lease: ClaimLease;
  private readonly placement: PlacementStrategy;
  private readonly placementByKind: ReadonlyMap<string, PlacementStrategy>;

  constructor(context: ClaimsContext) {
    this.redis = context.redis;
    this.keys = context.keys;
    this.member = context.member;
    this.lease = context.lease;
    this.placement = context.placement;
    this.placementByKind = context.placementByKind;
  }

  /** Round trips of the scripts, timed when an OpenTelemetry SDK records (lib/observability). */
  private readonly roundTrips = new LookupMetrics();

  /** Claims made in one event-loop turn, sent as one script run. */
  private readonly batches = new ClaimBatches((batch, claims) => this.runBatch(batch, claims));

  /** The members hosting each kind, as of the member list's current array. */
  private readonly hosting = new HostingMembers();

  /** The members' gossiped load, for strategies that place by it. */
  private readonly placementContext: PlacementContext = { load: (memberId) => this.member.load?.(memberId) };

  /**
   * Where `kind/identity` lives, claiming it here when it is placed here.
   * NOTE: not async: a claim's promise is handed back as it is (an async function returning it
   * would add a promise and two turns of the microtask queue to every new activation); what
   * throws here becomes a rejection all the same.
   */
  get(kind: string, identity: string, hint?: GetHint): Promise<Pid> {
    try {
      return this.place(kind, identity, hint);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private place(kind: string, identity: string, hint: GetHint | undefined): Promise<Pid> {
    const member = this.member;
    const name = `${kind}/${identity}`;
    const hostsKind = member.hostsKind(kind);
    // NOTE: an inbound call was placed here by its caller: claim here (the claim finds a live owner if any).
    if (hint?.inbound === true && hostsKind) return this.claim(kind, identity, name, hint.deadline);
    const self = member.self();
    let candidates = this.hosting.get(member.members(), kind);
    // NOTE: the provider may not list this member yet (a call made while it starts); it hosts the kind all the same.
    if (hostsKind && !includesMember(candidates, self)) candidates = [...candidates, self];
    const strategy = this.placementOf(kind);
    const target = strategy.place(kind, identity, candidates, self, this.placementContext);
    if (target !== undefined && !includesMember(candidates, target)) {
      throw new ClusterUnavailableError(
        `Placement "${strategy.name}" chose member ${target.id} for ${name}, which does not host kind "${kind}"; it never ran.`,
      );
    }
    if (target !== undefined && target.id === member.memberId) return this.claim(kind, identity, name, hint?.deadline);
    return this.resolve(kind, identity, name, target, hint);
  }

  /** Where `kind/identity` lives when placement chose another member (`target`), or none. */
  private async resolve(kind: string, identity: string, name: string, target: Member | undefined, hint: GetHint | undefined): Promise<Pid> {
    const member = this.member;
    const generation = this.lease.generation;
    const resolved = await run(this.roundTrips, 'resolve', () =>
      scripts.resolve.run(this.redis, [this.keys.generation, this.keys.entry(name)], [generation, this.keys.leasePrefix]),
    );
    if (resolved[0] === 'OWNED') return this.ownedPid(kind, identity, name, resolved, hint?.deadline);
    if (resolved[0] === 'GEN') throw this.generationChanged(generation);
    if (target === undefined) {
      // NOTE: members host the kind, but every one of them is leaving or suspected right now:
      // that passes (a suspicion clears, a new member joins); an unknown kind does not.
      if (membersHosting(member.hashMembers?.() ?? [], kind).length > 0) {
        throw new ClusterUnavailableError(
          `Grain ${name} cannot be placed now: every member hosting kind "${kind}" is leaving or suspected (its heartbeat stopped or its connection dropped); it never ran. Retry shortly.`,
        );
      }
      throw new UnknownKindError(kind);
    }
    return { memberId: target.id, incarnation: target.incarnation, address: target.address, id: '' };
  }

  /** Release the entry of an ended activation, if it still holds `pid`'s incarnation and `epoch`. */
  async release(kind: string, identity: string, pid: Pid, epoch: number): Promise<void> {
    const keys = this.keys;
    if (this.lease.stopped || pid.incarnation === undefined) return;
    const name = `${kind}/${identity}`;
    const started = this.roundTrips.start();
    try {
      await scripts.release.run(
        this.redis,
        [keys.generation, keys.entry(name), keys.activations(pid.incarnation)],
        [this.lease.generation, pid.incarnation, epoch, name],
      );
      this.roundTrips.ended('release', started, undefined);
    } catch {
      this.roundTrips.ended('release', started, undefined, UNAVAILABLE);
      // NOTE: a release that fails may or may not have run, so the entry cannot be trusted:
      // the member drops everything and rejoins as a new incarnation. The old incarnation's
      // lease is no longer renewed, so the entry is claimable once it lapses.
      this.lease.lost(`releasing ${name} failed, so its entry cannot be trusted`, pid.incarnation);
    }
  }

  /** Claim `name` for this member; `retired` names an activation of this incarnation whose claim is to be replaced. */
  private async claim(kind: string, identity: string, name: string, deadline: number | undefined, retired = ''): Promise<Pid> {
    const waiting = this.lease.whenReady(deadline);
    if (waiting !== undefined) await waiting;
    const member = this.member;
    const keys = this.keys;
    const incarnation = member.incarnation;
    const generation = this.lease.generation;
    const activationId = member.newActivationId();
    const reply = await this.batches.claim(
      { generation, incarnation, memberId: member.memberId, address: member.self().address },
      { entry: keys.entry(name), activationId, retired },
    );
    if (typeof reply === 'number') {
      if (member.incarnation !== incarnation) throw new ClusterUnavailableError(`The lease of this member changed while claiming ${name}; retry.`);
      try {
        return member.activateLocal(kind, identity, reply, activationId);
      } catch (error) {
        // NOTE: claimed but not activated (the member began leaving meanwhile): give the claim
        // back, or the entry would name an activation that does not exist until the lease ends.
        await this.release(kind, identity, { memberId: member.memberId, incarnation, id: activationId }, reply);
        throw error;
      }
    }
    switch (reply[0]) {
      case 'OWNED':
        return this.ownedPid(kind, identity, name, reply, deadline, retired);
      case 'GEN':
        throw this.generationChanged(generation);
      case 'ERR':
        // NOTE: this identity's entry is not one (another program wrote the key?): it alone fails.
        throw new ClusterUnavailableError(`Redis could not claim ${name}: ${String(reply[1])}.`);
      default:
        // NOTE: Redis holds no lease for this incarnation although the member joined: it lapsed
        // there (the renewer would notice at its next renewal) or was removed. Rejoin now.
        this.lease.lost(`Redis holds no lease for incarnation ${incarnation} (${String(reply[0])})`, incarnation);
        throw new ClusterUnavailableError(`This member's lease is gone (${String(reply[0])}); it is rejoining. Retry.`);
    }
  }

  private async ownedPid(kind: string, identity: string, name: string, reply: Reply, deadline: number | undefined, retiredBefore = ''): Promise<Pid> {
    const member = this.member;
    const [, memberId, incarnation, address, activation, epoch] = reply;
    if (memberId == null || incarnation == null || activation == null || epoch == null)
      throw new ClusterUnavailableError(`Redis returned an incomplete entry for ${kind}/${identity}.`);
    // NOTE: the epoch becomes an activation's fencing token: a whole number, as claim.lua writes it.
    if (!EPOCH.test(epoch)) throw new ClusterUnavailableError(`Redis returned an entry for ${kind}/${identity} whose epoch is not a whole number.`);
    if (incarnation === member.incarnation) {
      if (member.isRetired(activation) && activation !== retiredBefore) {
        // NOTE: the activation under this claim was fenced on its own and may still be running
        // a turn: a new one must not run under the same claim (same epoch, same id). Claim the
        // identity afresh instead.
        return this.claim(kind, identity, name, deadline, activation);
      }
      // Ours: the activation exists here, or is being re-created for the same claim.
      return member.activateLocal(kind, identity, Number(epoch), activation);
    }
    return { memberId, incarnation, address: address ?? '', id: activation };
  }

  /** One round trip for `claims` (all under `batch`): each claim's own reply, in order. */
  private async runBatch(batch: ClaimBatch, claims: readonly ClaimRequest[]): Promise<ClaimReply[]> {
    // NOTE: the member moved to another incarnation since these claims were made (it lost its
    // lease and rejoined): claiming for the abandoned one would only strand the entries.
    if (this.member.incarnation !== batch.incarnation) throw new ClusterUnavailableError('The lease of this member changed while claiming; retry.');
    const keys = this.keys;
    const batchKeys = [keys.generation, keys.lease(batch.incarnation), keys.activations(batch.incarnation)];
    // NOTE: claim.lua's ARGV: the batch's 7 fields (the last: how many claims retire an id), one
    // activation id per claim, then a (claim number, retired id) pair per claim that retires one.
    const retiring: string[] = [];
    claims.forEach((claim, i) => {
      if (claim.retired !== '') retiring.push(String(i + 1), claim.retired);
    });
    const args = [batch.generation, batch.incarnation, batch.memberId, batch.address, keys.leasePrefix, keys.entryPrefix, String(retiring.length / 2)];
    for (const claim of claims) {
      batchKeys.push(claim.entry);
      args.push(claim.activationId);
    }
    for (const value of retiring) args.push(value);
    return runScript(
      this.roundTrips,
      'claim',
      claims.length,
      () => scripts.claim.run(this.redis, batchKeys, args),
      (raw) => batchReplies(raw, claims.length),
    );
  }

  /**
   * The lookup's `placementByKind` entry, else the kind's own (`@Grain({ placement })`, known
   * where it is hosted), else the lookup's `placement`.
   *
   * NOTE: the lookup's options win: they are the deployment's, the same on every member,
   * including those that call the kind without hosting it (and so never see its own).
   */
  private placementOf(kind: string): PlacementStrategy {
    return this.placementByKind.get(kind) ?? this.member.placementOf?.(kind) ?? this.placement;
  }

  private generationChanged(generation: string): ClusterUnavailableError {
    this.lease.generationChanged(generation);
    return new ClusterUnavailableError('Redis lost data (its generation changed); this member is rejoining and claims nothing for a lease period. Retry.');
  }
}

/** What the claims of one batch share: the member, as it was when each claim was made. */
interface ClaimBatch {
  readonly generation: string;
  readonly incarnation: string;
  readonly memberId: string;
  readonly address: string;
}

/** One identity's claim in a batch. */
interface ClaimRequest {
  /** Its entry's key (`RedisKeys.entry`: the script takes the name, for the set of entries, from it). */
  readonly entry: string;
  readonly activationId: string;
  /** A retired activation id whose claim is to be replaced, or ''. */
  readonly retired: string;
}

/** An epoch as claim.lua writes it: a whole number of at most 15 digits (exact as a double). */
const EPOCH = /^\d{1,15}$/;

/** Claims in one script run, at most: bounds how long Redis runs one script (a few µs per claim). */
export const MAX_CLAIMS_PER_BATCH = 256;

/**
 * Claims made in one event-loop turn go to Redis as one script run (`lua/claim.lua`), which
 * decides each identity's claim on its own: one round trip and one generation check for all
 * of them. The first claim of a turn schedules the run (`setImmediate`); claims made under
 * another generation, incarnation or address (the member rejoined meanwhile) run apart.
 */
class ClaimBatches {
  private pending: PendingClaim[] = [];
  private scheduled = false;

  constructor(private readonly send: (batch: ClaimBatch, claims: readonly ClaimRequest[]) => Promise<ClaimReply[]>) {}

  claim(batch: ClaimBatch, claim: ClaimRequest): Promise<ClaimReply> {
    return new Promise<ClaimReply>((resolve, reject) => {
      this.pending.push({ batch, claim, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    const pending = this.pending;
    this.pending = [];
    this.scheduled = false;
    // NOTE: almost always one group (the member rejoined between two claims of a turn otherwise).
    const groups: PendingClaim[][] = [];
    for (const entry of pending) {
      let group = groups.find((g) => sameBatch(g[0]!.batch, entry.batch));
      if (group === undefined) groups.push((group = []));
      group.push(entry);
    }
    for (const group of groups) {
      for (let from = 0; from < group.length; from += MAX_CLAIMS_PER_BATCH) {
        const part = group.slice(from, from + MAX_CLAIMS_PER_BATCH);
        this.send(
          part[0]!.batch,
          part.map((p) => p.claim),
        ).then(
          (replies) => part.forEach((p, i) => p.resolve(replies[i]!)),
          (error: unknown) => part.forEach((p) => p.reject(error)),
        );
      }
    }
  }
}

interface PendingClaim {
  readonly batch: ClaimBatch;
  readonly claim: ClaimRequest;
  readonly resolve: (reply: ClaimReply) => void;
  readonly reject: (error: unknown) => void;
}

function sameBatch(a: ClaimBatch, b: ClaimBatch): boolean {
  return a.generation === b.generation && a.incarnation === b.incarnation && a.memberId === b.memberId && a.address === b.address;
}

/**
 * The claim script's answer, checked (untrusted bytes): `['GEN']` stands for every claim of the
 * batch; else one reply per claim, each of the shapes lua/claim.lua gives: the epoch, a whole
 * number above 0 (claimed here), `['OWNED', member, incarnation, address, activation, epoch]`
 * (strings or nulls), `['NOLEASE']`, `['ERR', why]`. Undefined when it is anything else: then
 * no reply of the batch can be trusted.
 */
function batchReplies(raw: unknown, count: number): ClaimReply[] | undefined {
  if (!Array.isArray(raw) || raw.length === 0) return undefined;
  if (raw[0] === 'GEN' && raw.length === 1) return Array.from({ length: count }, () => ['GEN']);
  if (raw[0] !== 'BATCH' || raw.length !== count + 1) return undefined;
  const replies: ClaimReply[] = [];
  for (let i = 1; i <= count; i++) {
    const item: unknown = raw[i];
    if (typeof item === 'number') {
      if (!Number.isSafeInteger(item) || item <= 0) return undefined;
      replies.push(item);
      continue;
    }
    const answer = asReply(item);
    if (answer === undefined || !wellFormed(answer)) return undefined;
    replies.push(answer);
  }
  return replies;
}

function wellFormed(reply: Reply): boolean {
  switch (reply[0]) {
    case 'OWNED':
      return reply.length === 6;
    case 'NOLEASE':
      return reply.length === 1;
    case 'ERR':
      return reply.length === 2 && reply[1] !== null;
    default:
      return false;
  }
}

/** The `error.type` of a failed round trip: the code of ClusterUnavailableError, what the lookup fails with. */
const UNAVAILABLE = 'GRAIN_CLUSTER_UNAVAILABLE';

/** Run one lookup command (`script`, timed in `roundTrips`); any Redis failure is ClusterUnavailableError, any odd reply too. */
async function run(roundTrips: LookupMetrics, script: LookupScript, command: () => Promise<unknown>): Promise<Reply> {
  const [answer] = await runScript(roundTrips, script, 1, command, (raw) => {
    const reply = asReply(raw);
    return reply === undefined ? undefined : [reply];
  });
  return answer!;
}

/** A script's reply (untrusted): an array of strings, numbers (as strings) or nulls; undefined when it is anything else. */
function asReply(raw: unknown): Reply | undefined {
  if (!Array.isArray(raw) || raw.some((v) => v !== null && typeof v !== 'string' && typeof v !== 'number')) return undefined;
  return raw.map((v: string | number | null) => (v === null ? null : String(v)));
}

/**
 * One round trip answering `count` lookups (a claim batch, or one command): `check` turns the
 * untrusted reply into one reply per lookup, or undefined when it is malformed. Each lookup's
 * round trip is recorded in `roundTrips`; a Redis failure or a malformed reply is
 * ClusterUnavailableError.
 */
async function runScript<R extends ClaimReply>(
  roundTrips: LookupMetrics,
  script: LookupScript,
  count: number,
  command: () => Promise<unknown>,
  check: (raw: unknown) => R[] | undefined,
): Promise<R[]> {
  const started = roundTrips.start();
  let raw: unknown;
  try {
    raw = await command();
  } catch (error) {
    for (let i = 0; i < count; i++) roundTrips.ended(script, started, undefined, UNAVAILABLE);
    throw new ClusterUnavailableError(`Redis did not answer the identity lookup: ${(error as Error).message}`);
  }
  const replies = check(raw);
  if (replies === undefined) {
    for (let i = 0; i < count; i++) roundTrips.ended(script, started, undefined, UNAVAILABLE);
    throw new ClusterUnavailableError(`Redis returned a malformed lookup reply: ${JSON.stringify(raw).slice(0, 200)}`);
  }
  for (const reply of replies) roundTrips.ended(script, started, typeof reply === 'number' ? 'CLAIMED' : (reply[0] ?? undefined));
  return replies;
}
