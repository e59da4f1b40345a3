import type { Pid } from '../../actor/pid.js';
import type { TurnGuard } from '../fencing.js';
import type { MemberLoad } from '../gossip/gossiper.js';
import type { PlacementStrategy } from '../placement/placement-strategy.js';
import type { Member } from '../providers/cluster-provider.js';

export type { TurnGuard };

/** What a lookup may ask of the member it runs in. */
export interface LookupMember {
  readonly clusterName: string;
  readonly memberId: string;
  /** This member's current incarnation; it changes when the member is fenced and rejoins. */
  readonly incarnation: string;
  /** This member as others see it (one frozen record until its incarnation or address changes). */
  self(): Member;
  /**
   * The members new grains may be placed on now, from the cluster provider: this one
   * included unless it is leaving; members that said they are leaving, and members gossip
   * suspects (heartbeat stopped, connection dropped), excluded. The same array until that
   * changes, then a new one (never modified in place: a lookup may keep what it derived from
   * an array for as long as it is handed the same one).
   */
  members(): readonly Member[];
  /**
   * `members()` with the suspected members kept: for a lookup that places by hash, where
   * leaving a suspected member out would move its grains (a second activation once it is
   * heard again). Absent: use `members()`. Like `members()`: the same array until it changes,
   * never modified in place.
   */
  hashMembers?(): readonly Member[];
  /**
   * The load member `memberId` last gossiped (activations, mailbox depth, calls/s), for
   * placement by load; undefined when not heard (or gossip is off).
   */
  load?(memberId: string): MemberLoad | undefined;
  /** False while the provider is still learning the membership (`ProviderMember.setMembers(…, false)`). */
  membershipComplete(): boolean;
  /** Whether this member hosts `kind` (and may take new activations of it: false once it is leaving). */
  hostsKind(kind: string): boolean;
  /**
   * The placement `kind` declares for itself (`@Grain({ placement })`, `KindDefinition.placement`),
   * known only where the kind is hosted: undefined when this member does not host it, or the kind
   * declares none. Absent: none is known.
   */
  placementOf?(kind: string): PlacementStrategy | undefined;
  /** A new activation id, unique in the cluster (for claims made before the activation exists). */
  newActivationId(): string;
  /**
   * Create (or return the existing) local activation of `kind/identity` with the given
   * epoch (and activation id, when the claim recorded one), and give its Pid. Only the
   * holder of the identity's claim may call this.
   */
  activateLocal(kind: string, identity: string, epoch: number, activationId?: string): Pid;
  /**
   * True when `activationId` is an activation of this incarnation that ended fenced, without
   * releasing its claim (its turns may still be running): a claim naming it is not to be
   * re-used for a new activation.
   */
  isRetired(activationId: string): boolean;
  /**
   * Whatever this member held is no longer its own (lease lost, store lost data): drop every
   * activation now, without hooks (calls waiting for them go elsewhere), and take a new
   * incarnation.
   */
  fenceAll(reason: string): void;
  log(level: 'log' | 'warn', message: string): void;
}

/** Extra knowledge about a `get`. */
export interface GetHint {
  /** The call came from another member, which placed the grain here: claim it here. */
  readonly inbound?: boolean;
  /** The call's deadline (monotonic ms, actor/clock.ts): how long the lookup may wait. */
  readonly deadline?: number;
}

/** What a lookup says of itself, for health. */
export interface LookupHealth {
  /** False while its store (Redis, ...) cannot be reached. */
  readonly reachable: boolean;
  /** False while it cannot place grains here (no lease held yet, or rejoining). */
  readonly ready: boolean;
  /** What is wrong, when something is. */
  readonly detail?: string;
}

/**
 * Where each grain lives. The lookup is the single authority on placement: it finds the
 * activation of an identity, or places one (claiming the identity first) and returns its Pid.
 */
export interface IdentityLookup {
  /** A name for logs and health, such as `in-memory` or `redis`. */
  readonly name: string;
  /** Present when activations must be fenced by a lease. */
  readonly turnGuard?: TurnGuard;
  /** Called once when the member starts. */
  setup(member: LookupMember): Promise<void>;
  /** The Pid of the activation of `kind/identity`, placing and activating it if there is none. */
  get(kind: string, identity: string, hint?: GetHint): Promise<Pid>;
  /**
   * An activation of this member ended: release its entry if it still holds `pid` and
   * `epoch`. When this returns a promise, the member holds calls for the identity until it
   * settles, so none of them finds the old entry and re-creates the old activation.
   */
  remove(kind: string, identity: string, pid: Pid, epoch: number): void | Promise<void>;
  /** Called once when the member stops, after its activations are gone. */
  shutdown(): Promise<void>;
  /** Reachability and readiness, for health. Absent: always reachable and ready. */
  health?(): LookupHealth;
}
