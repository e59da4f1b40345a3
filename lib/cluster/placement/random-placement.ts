import type { Member } from '../providers/cluster-provider.js';
import type { PlacementStrategy } from './placement-strategy.js';

/** A candidate chosen uniformly at random: spreads new activations without any shared state. */
export class RandomPlacement implements PlacementStrategy {
  readonly name = 'random';

  place(_kind: string, _identity: string, candidates: readonly Member[], _self?: Member): Member | undefined {
    return candidates[Math.floor(Math.random() * candidates.length)];
  }
}
