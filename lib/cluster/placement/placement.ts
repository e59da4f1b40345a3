import { GrainConfigurationError } from '../errors.js';
import type { PlacementStrategy } from './placement-strategy.js';
import { PreferLocalPlacement } from './prefer-local-placement.js';
import { RandomPlacement } from './random-placement.js';
import { RendezvousPlacement } from './rendezvous-placement.js';
import { LeastLoadedPlacement } from './least-loaded-placement.js';

/** The built-in strategies by name, for options that take a name. */
export type Placement = 'prefer-local' | 'random' | 'rendezvous' | 'least-loaded';

/** A strategy from an option: one of the built-in names, or a strategy of the user's own. */
export function placementStrategy(option: Placement | PlacementStrategy, optionName: string): PlacementStrategy {
  if (typeof option === 'object' && option !== null && typeof option.place === 'function') return option;
  switch (option) {
    case 'prefer-local':
      return new PreferLocalPlacement();
    case 'random':
      return new RandomPlacement();
    case 'rendezvous':
      return new RendezvousPlacement();
    case 'least-loaded':
      return new LeastLoadedPlacement();
  }
  throw new GrainConfigurationError(
    `${optionName}: "${String(option)}" is not a placement; use 'prefer-local', 'random', 'rendezvous', 'least-loaded' or an object implementing PlacementStrategy.`,
  );
}
