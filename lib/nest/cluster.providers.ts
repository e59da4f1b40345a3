import { type Provider, Scope } from '@nestjs/common';
import { Cluster } from '../cluster/cluster.js';
import { GrainConfigurationError } from '../cluster/errors.js';
import type { GrainClass } from '../cluster/kind.js';
import { GRAIN_CONTEXT, GRAIN_KIND_TOKEN_PREFIX } from './cluster.constants.js';
import { GRAIN_CONTEXT_OUTSIDE_GRAIN } from './cluster.messages.js';
import { getGrainClientToken } from './grain-client.token.js';
import { GrainMetadataAccessor } from './grain-metadata.accessor.js';

/** A typed client per kind, injectable with `@InjectGrainClient(classOrKind)`. */
export function createGrainClientProviders(entries: ReadonlyArray<GrainClass | string>): Provider[] {
  const kinds = new Set(entries.map((entry) => (typeof entry === 'string' ? entry : GrainMetadataAccessor.kindOf(entry))));
  return [...kinds].map((kind) => ({
    provide: getGrainClientToken(kind),
    useFactory: (cluster: Cluster) => cluster.client(kind),
    inject: [Cluster],
  }));
}

/**
 * One discoverable provider per grain class, for the explorer to find through Nest's
 * DiscoveryService.
 *
 * NOTE: the value is an object with the grain's prototype that is never constructed: Nest
 * must not instantiate a grain (an activation does, with its own GrainContext), yet the
 * DiscoveryService finds `useValue` providers by their value's constructor.
 */
export function createGrainKindProviders(grainClasses: readonly GrainClass[]): Provider[] {
  return grainClasses.map((grainClass) => ({
    provide: `${GRAIN_KIND_TOKEN_PREFIX}${GrainMetadataAccessor.kindOf(grainClass)}:${grainClass.name}`,
    useValue: Object.create(grainClass.prototype as object) as object,
  }));
}

/** Splits `forFeature` entries into grain classes and kind names, refusing anything else. */
export function splitFeatureEntries(entries: ReadonlyArray<GrainClass | string>): { classes: GrainClass[]; names: string[] } {
  const classes: GrainClass[] = [];
  const names: string[] = [];
  for (const entry of entries) {
    if (typeof entry === 'string') names.push(entry);
    else if (GrainMetadataAccessor.isGrain(entry)) classes.push(entry);
    else GrainMetadataAccessor.kindOf(entry); // throws the message that names the fix
  }
  return { classes, names };
}

/**
 * GrainContext exists per activation only. Any other consumer gets a startup error that
 * says so, instead of Nest's generic "can't resolve dependencies".
 */
export const grainContextGuardProvider: Provider = {
  provide: GRAIN_CONTEXT,
  scope: Scope.TRANSIENT,
  useFactory: () => {
    throw new GrainConfigurationError(GRAIN_CONTEXT_OUTSIDE_GRAIN());
  },
};
