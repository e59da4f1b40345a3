import { Inject } from '@nestjs/common';
import type { GrainClass } from '../../cluster/kind.js';
import { getGrainClientToken } from '../grain-client.token.js';

/**
 * Injects `GrainClient<T>` for a kind, by grain class or by kind name. Pass the name when
 * the caller imports the grain class as a type only:
 * `@InjectGrainClient('account') accounts: GrainClient<AccountGrain>`.
 * The module must import `ClusterModule.forFeature([...])` listing that class or name.
 */
export function InjectGrainClient(kindOrClass: string | GrainClass): ParameterDecorator & PropertyDecorator {
  return Inject(getGrainClientToken(kindOrClass));
}
