import type { GrainClass } from '../cluster/kind.js';
import { GRAIN_CLIENT_TOKEN_PREFIX } from './cluster.constants.js';
import { GrainMetadataAccessor } from './grain-metadata.accessor.js';

/** The injection token of `GrainClient` for a kind, by grain class or kind name. */
export function getGrainClientToken(kindOrClass: string | GrainClass): string {
  const kind = typeof kindOrClass === 'string' ? kindOrClass : GrainMetadataAccessor.kindOf(kindOrClass);
  return `${GRAIN_CLIENT_TOKEN_PREFIX}${kind}`;
}
