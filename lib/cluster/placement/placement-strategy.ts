import type { MemberLoad } from '../gossip/gossiper.js';
import type { Member } from '../providers/cluster-provider.js';

/** What a strategy may know beside the candidates. */
export interface PlacementContext {
  /** The load member `memberId` last gossiped; undefined when not heard yet (or gossip is off). */
  load(memberId: string): MemberLoad | undefined;
}

/**
 * Where a new activation goes. A strategy only chooses among the members that host the kind;
 * the identity lookup decides whether a choice is needed at all (an existing activation is
 * found, never re-placed) and claims the identity on the member chosen.
 */
export interface PlacementStrategy {
  /** A name for logs and options, such as `rendezvous` or `random`. */
  readonly name: string;
  /**
   * The member that should host a new activation of `kind/identity`, chosen from `candidates`
   * (the members hosting `kind`, never empty; never modify it: it may be a frozen array a lookup
   * keeps while membership does not change — copy it to reorder), or undefined when none will do.
   * `self` is the member asking: it is among `candidates` only when it hosts the kind.
   * `context` gives the members' gossiped load (absent for lookups that do not pass it).
   */
  place(kind: string, identity: string, candidates: readonly Member[], self: Member, context?: PlacementContext): Member | undefined;
}

/** The members of `members` that host `kind`. */
export function membersHosting(members: readonly Member[], kind: string): Member[] {
  return members.filter((member) => member.kinds.includes(kind));
}

/** Whether `member` is among `candidates`: the same record, or one with its id (a list may hold an older record of it). */
export function includesMember(candidates: readonly Member[], member: Member): boolean {
  return candidates.includes(member) || candidates.some((m) => m.id === member.id);
}

/** Kinds whose hosting members a HostingMembers keeps, at most (kind names come from callers). */
const MAX_KINDS_REMEMBERED = 1_000;

/**
 * `membersHosting`, remembered per kind for as long as the member list is the same array
 * (MemberList hands out one array until membership changes): placement asks on every new
 * activation, and a filtered copy per activation is garbage for nothing.
 */
export class HostingMembers {
  private of: readonly Member[] | undefined;
  private readonly byKind = new Map<string, readonly Member[]>();

  get(members: readonly Member[], kind: string): readonly Member[] {
    if (members !== this.of || this.byKind.size >= MAX_KINDS_REMEMBERED) {
      this.of = members;
      this.byKind.clear();
    }
    let hosting = this.byKind.get(kind);
    if (hosting === undefined) this.byKind.set(kind, (hosting = Object.freeze(membersHosting(members, kind))));
    return hosting;
  }
}
