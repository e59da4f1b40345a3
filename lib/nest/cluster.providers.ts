import { type Provider, Scope } from '@nestjs/common';
import { Cluster } from '../cluster/cluster.js';
import { GrainConfigurationError } from '../cluster/errors.js';
import { type GrainClass, isKindName } from '../cluster/kind.js';
import { GRAIN_CONTEXT, GRAIN_KIND_TOKEN_PREFIX } from './cluster.constants.js';
import { BAD_KIND_NAME, GRAIN_CONTEXT_OUTSIDE_GRAIN } from './cluster.messages.js';
import { getGrainClientToken } from './grain-client.token.js';
import { GrainKindRegistration } from './grain-kind-registration.js';
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
 * One provider per grain class to host, whose value is a `GrainKindRegistration` naming the
 * class, for the explorer to find. Nest never instantiates a grain (an activation does, with its
 * own GrainContext), and no provider's value is, or looks like, an instance of one.
 */
export function createGrainKindProviders(grainClasses: readonly GrainClass[]): Provider[] {
  return grainClasses.map((grainClass) => ({
    provide: `${GRAIN_KIND_TOKEN_PREFIX}${GrainMetadataAccessor.kindOf(grainClass)}:${grainClass.name}`,
    useValue: new GrainKindRegistration(grainClass),
  }));
}

/**
 * Splits `forFeature` entries into grain classes (hosted here) and kind names (only called),
 * refusing anything else.
 */
export function splitFeatureEntries(entries: ReadonlyArray<GrainClass | string>): { classes: GrainClass[]; names: string[] } {
  const classes: GrainClass[] = [];
  const names: string[] = [];
  for (const entry of entries) {
    if (typeof entry === 'string') {
      if (!isKindName(entry)) throw new GrainConfigurationError(BAD_KIND_NAME(entry));
      names.push(entry);
    } else if (GrainMetadataAccessor.isGrain(entry)) classes.push(entry);
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
