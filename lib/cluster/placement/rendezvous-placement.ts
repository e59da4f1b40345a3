import type { Member } from '../providers/cluster-provider.js';
import type { PlacementStrategy } from './placement-strategy.js';

/**
 * Rendezvous (highest random weight) hashing of `kind/identity` over the candidates: every
 * member computes the same owner from the same membership, without asking anyone. When a
 * member leaves, only the identities it owned move.
 */
export class RendezvousPlacement implements PlacementStrategy {
  readonly name = 'rendezvous';

  place(kind: string, identity: string, candidates: readonly Member[], _self?: Member): Member | undefined {
    return rendezvousOwner(candidates, `${kind}/${identity}`);
  }
}

/** The candidate with the highest weight for `key`; ties (vanishingly rare) go to the lowest id. */
export function rendezvousOwner(candidates: readonly Member[], key: string): Member | undefined {
  let best: Member | undefined;
  let bestWeight = -1;
  for (const member of candidates) {
    const weight = weightOf(member.id, key);
    if (weight > bestWeight || (weight === bestWeight && best !== undefined && member.id < best.id)) {
      best = member;
      bestWeight = weight;
    }
  }
  return best;
}

/** 32-bit FNV-1a of `memberId NUL key`, with a murmur3 finalizer (spreads FNV's low-entropy output). */
export function weightOf(memberId: string, key: string): number {
  const text = `${memberId}\u0000${key}`;
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
