import type { Pid } from '../../actor/pid.js';
import { ClusterUnavailableError, UnknownKindError } from '../errors.js';
import { HostingMembers } from '../placement/placement-strategy.js';
import { RendezvousPlacement } from '../placement/rendezvous-placement.js';
import type { IdentityLookup, LookupMember } from './identity-lookup.js';

/**
 * Placement without a store: rendezvous (highest random weight) hashing of `kind/identity`
 * over the members that host the kind (placement/rendezvous-placement.ts). Every member computes the same owner from the same
 * membership, so no round trip is needed.
 *
 * NOTE: there is no claim. While members disagree about membership (a member joining,
 * leaving, or not yet learned), two of them may each believe they own an identity, and a
 * grain may be activated twice. Use it for fixed-size clusters; the Redis lookup is the one
 * for dynamic clusters. `ctx.epoch` then counts activations on the hosting member only: it
 * is not a fencing token across members.
 */
export class HashIdentityLookup implements IdentityLookup {
  readonly name = 'hash';
  private member: LookupMember | undefined;
  private lastEpoch = 0;
  private readonly placement = new RendezvousPlacement();
  /** The members hosting each kind, kept while the member list is the same array. */
  private readonly hosting = new HostingMembers();

  async setup(member: LookupMember): Promise<void> {
    this.member = member;
  }

  async get(kind: string, identity: string): Promise<Pid> {
    const member = this.member;
    if (member === undefined) throw new Error('HashIdentityLookup used before setup()');
    if (!member.membershipComplete()) {
      // NOTE: placing by a partial member list would put grains where their owners-to-be
      // will not look for them: a second activation once the list is complete.
      throw new ClusterUnavailableError(`Grain ${kind}/${identity} cannot be placed yet: not every listed member has answered. Retry shortly.`);
    }
    // NOTE: suspected members keep their identities: gossip never moves a grain (without a
    // claim, moving it would run it twice once its member is heard again).
    const owner = this.placement.place(kind, identity, this.hosting.get(member.hashMembers?.() ?? member.members(), kind));
    if (owner === undefined) throw new UnknownKindError(kind);
    if (owner.id === member.memberId) return member.activateLocal(kind, identity, ++this.lastEpoch);
    return { memberId: owner.id, incarnation: owner.incarnation, address: owner.address, id: '' };
  }

  remove(): void {}

  async shutdown(): Promise<void> {}
}
