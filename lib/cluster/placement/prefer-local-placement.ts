import type { Member } from '../providers/cluster-provider.js';
import type { PlacementStrategy } from './placement-strategy.js';
import { RandomPlacement } from './random-placement.js';

/**
 * The asking member when it hosts the kind (no network hop for the first call, and the
 * caller's grains stay near it); otherwise `fallback` (random) among the members hosting it.
 */
export class PreferLocalPlacement implements PlacementStrategy {
  readonly name = 'prefer-local';

  constructor(private readonly fallback: PlacementStrategy = new RandomPlacement()) {}

  place(kind: string, identity: string, candidates: readonly Member[], self: Member): Member | undefined {
    for (const member of candidates) if (member.id === self.id) return member;
    return this.fallback.place(kind, identity, candidates, self);
  }
}
