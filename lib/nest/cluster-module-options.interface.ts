import type { ClusterOptions } from '../cluster/cluster-options.js';

/**
 * Options of `ClusterModule.forRoot()` / `forRootAsync()`: the runtime's `ClusterOptions`.
 * With neither `provider` nor `identityLookup` the member runs the embedded default: one
 * member, in memory, no network.
 */
export type ClusterModuleOptions = ClusterOptions;
