import type { LocalMember } from './local-member.js';
import type { ClusterLogger } from './logger.js';
import type { Member } from './providers/cluster-provider.js';

/** A change in the membership, as the member list reports it. */
export type MembershipEvent =
  | { readonly type: 'joined'; readonly member: Member }
  | { readonly type: 'left'; readonly member: Member }
  /** Same id, something else changed: a new incarnation (a restart, a rejoin), address or kinds. */
  | { readonly type: 'changed'; readonly member: Member; readonly previous: Member };

/** Listens to membership changes. */
export type MembershipListener = (event: MembershipEvent) => void;

/**
 * A member list as handed out, and this member as it was in it. NOTE: LocalMember.self() is one
 * object until this member's record changes (a new incarnation), so comparing it tells when.
 */
interface Listing {
  readonly self: Member | undefined;
  readonly members: readonly Member[];
}

/**
 * Who is in the cluster, by member id: what the cluster provider reports, and nothing else.
 * This member always counts (as it is now). A handshake may confirm a member, or tell that
 * it is leaving (no new placements there), but never adds, changes or replaces one.
 *
 * The PidCache, placement (through the identity lookup), the remote connections and health
 * act on it: placement reads `placeable()`, the rest listen to its events.
 */
export class MemberList {
  private readonly byId = new Map<string, Member>();
  /** `id\nincarnation` of members that said they are leaving (they keep serving what they host). */
  private readonly leaving = new Set<string>();
  /** `id\nincarnation` of members gossip suspects (heartbeat stopped, connection dropped): no new placements there. */
  private readonly suspected = new Set<string>();
  private readonly listeners = new Set<MembershipListener>();
  /** `placeable()` and `notLeaving()` as last made; dropped when membership changes (`forgetListings`). */
  private placeableCache: Listing | undefined;
  private notLeavingCache: Listing | undefined;
  private reported = false;
  private providerComplete = false;
  private selfLeaving = false;
  private readyWaiters: (() => void)[] = [];
  /** Warned once per id: a provider listed another process under this member's own id. */
  private warnedSelfId = false;

  constructor(
    private readonly self: LocalMember,
    private readonly logger: ClusterLogger,
  ) {}

  /** The provider's whole view now (`complete` false while it is still learning). */
  update(members: readonly Member[], complete = true): void {
    const next = new Map<string, Member>();
    for (const member of members) {
      if (member.id === this.self.id) {
        if (member.incarnation !== this.self.incarnation && member.address !== this.self.address && !this.warnedSelfId) {
          this.warnedSelfId = true;
          this.logger.warn(
            `Membership: the provider lists another process (${member.address || 'no address'}) under this member's id "${member.id}"; ignored. Give every member its own memberId.`,
          );
        }
        continue;
      }
      next.set(member.id, member);
    }
    const events: MembershipEvent[] = [];
    for (const [id, previous] of this.byId) {
      const member = next.get(id);
      if (member === undefined) events.push({ type: 'left', member: previous });
      else if (!sameMember(member, previous)) events.push({ type: 'changed', member, previous });
    }
    for (const [id, member] of next) if (!this.byId.has(id)) events.push({ type: 'joined', member });
    this.byId.clear();
    for (const [id, member] of next) this.byId.set(id, member);
    for (const set of [this.leaving, this.suspected]) {
      for (const key of set) {
        const [id, incarnation] = key.split('\n') as [string, string];
        if (this.byId.get(id)?.incarnation !== incarnation) set.delete(key);
      }
    }
    this.forgetListings();
    this.reported = true;
    this.providerComplete = complete;
    for (const event of events) this.emit(event);
    if (this.known) this.settleReady();
  }

  /** Every member known now, this one included (leaving ones too). */
  all(): readonly Member[] {
    return [this.self.self(), ...this.byId.values()];
  }

  /**
   * The members new grains may be placed on: all but those leaving or suspected (this one
   * included, unless it is leaving).
   */
  placeable(): readonly Member[] {
    const self = this.selfLeaving ? undefined : this.self.self();
    let cached = this.placeableCache;
    if (cached === undefined || cached.self !== self) cached = this.placeableCache = this.listing(self, this.suspected);
    return cached.members;
  }

  /**
   * The members not leaving, suspected or not (this one included, unless it is leaving). One
   * array until membership changes, as `placeable()`: lookups keep what they derive from it
   * while it is the same array (HostingMembers).
   */
  notLeaving(): readonly Member[] {
    const self = this.selfLeaving ? undefined : this.self.self();
    let cached = this.notLeavingCache;
    if (cached === undefined || cached.self !== self) cached = this.notLeavingCache = this.listing(self, undefined);
    return cached.members;
  }

  /** `self` (undefined while it leaves) and the listed members neither leaving nor in `excluded`. */
  private listing(self: Member | undefined, excluded: ReadonlySet<string> | undefined): Listing {
    const members: Member[] = self === undefined ? [] : [self];
    for (const member of this.byId.values()) {
      const key = keyOf(member);
      if (!this.leaving.has(key) && excluded?.has(key) !== true) members.push(member);
    }
    return { self, members };
  }

  /** Membership changed: the next `placeable()` and `notLeaving()` are new arrays. */
  private forgetListings(): void {
    this.placeableCache = undefined;
    this.notLeavingCache = undefined;
  }

  /** The member with `id`, if the provider lists it (this member included). */
  get(id: string): Member | undefined {
    return id === this.self.id ? this.self.self() : this.byId.get(id);
  }

  /** How many members are known, this one included. */
  get size(): number {
    return this.byId.size + 1;
  }

  /** True once the provider reported a complete membership. */
  get known(): boolean {
    return this.reported && this.providerComplete;
  }

  /** False while the provider is still learning the membership. */
  get complete(): boolean {
    return this.providerComplete;
  }

  /** True once this member started leaving. */
  get isLeaving(): boolean {
    return this.selfLeaving;
  }

  /** This member is leaving: no new placements here from now on. */
  leave(): void {
    this.selfLeaving = true;
    this.forgetListings();
  }

  /**
   * A member told, on a connection this member dialled to `address` (or through gossip, with
   * no address), that it is leaving. Counted only for a listed member with that incarnation
   * (and at that address).
   */
  markLeaving(id: string, incarnation: string, address?: string): boolean {
    const member = this.byId.get(id);
    if (member === undefined || member.incarnation !== incarnation || (address !== undefined && member.address !== address)) return false;
    const key = keyOf(member);
    if (this.leaving.has(key)) return true;
    this.leaving.add(key);
    this.forgetListings();
    return true;
  }

  /**
   * Gossip suspects the listed member `id` (its heartbeat stopped, or its connection dropped),
   * or heard it again: a suspected member gets no new placements. Never permanent, and never
   * a reason to move what it hosts.
   */
  setSuspected(id: string, incarnation: string, suspected: boolean): void {
    const key = `${id}\n${incarnation}`;
    if (suspected === this.suspected.has(key)) return;
    if (suspected) {
      if (this.byId.get(id)?.incarnation !== incarnation) return;
      this.suspected.add(key);
    } else this.suspected.delete(key);
    this.placeableCache = undefined;
  }

  /** Whether the member `id` (as listed) said it is leaving. */
  isMemberLeaving(id: string): boolean {
    const member = this.byId.get(id);
    return member !== undefined && this.leaving.has(keyOf(member));
  }

  /** Be told of every membership change; returns the function that stops it. */
  onChange(listener: MembershipListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves once the provider reported a complete membership. */
  whenKnown(): Promise<void> {
    if (this.known) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  private settleReady(): void {
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private emit(event: MembershipEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.logger.error(`Membership: a listener of '${event.type}' threw: ${(error as Error).message}`, (error as Error).stack);
      }
    }
  }
}

function keyOf(member: Member): string {
  return `${member.id}\n${member.incarnation}`;
}

function sameMember(a: Member, b: Member): boolean {
  return a.incarnation === b.incarnation && a.address === b.address && a.kinds.length === b.kinds.length && a.kinds.every((k, i) => k === b.kinds[i]);
}
