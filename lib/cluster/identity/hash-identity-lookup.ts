import type { Pid } from '../../actor/pid.js';
import { ClusterUnavailableError, UnknownKindError } from '../errors.js';
import type { Member } from '../providers/cluster-provider.js';
import type { IdentityLookup, LookupMember } from './identity-lookup.js';

/**
 * Placement without a store: rendezvous (highest random weight) hashing of `kind/identity`
 * over the members that host the kind. Every member computes the same owner from the same
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
    const owner = ownerOf(member.members(), kind, `${kind}/${identity}`);
    if (owner === undefined) throw new UnknownKindError(kind);
    if (owner.id === member.memberId) return member.activateLocal(kind, identity, ++this.lastEpoch);
    return { memberId: owner.id, incarnation: owner.incarnation, address: owner.address, id: '' };
  }

  remove(): void {}

  async shutdown(): Promise<void> {}
}

/** The member with the highest weight for `key` among those hosting `kind`. */
export function ownerOf(members: readonly Member[], kind: string, key: string): Member | undefined {
  let best: Member | undefined;
  let bestWeight = -1;
  for (const member of members) {
    if (!member.kinds.includes(kind)) continue;
    const weight = fnv1a(`${member.id}\u0000${key}`);
    if (weight > bestWeight || (weight === bestWeight && best !== undefined && member.id < best.id)) {
      best = member;
      bestWeight = weight;
    }
  }
  return best;
}

/** 32-bit FNV-1a with a murmur3 finalizer (spreads the low-entropy FNV output). */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}
