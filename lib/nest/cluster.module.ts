import { type DynamicModule, Logger, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Cluster } from '../cluster/cluster.js';
import type { GrainClass } from '../cluster/kind.js';
import type { ClusterModuleOptions } from './cluster-module-options.interface.js';
import { LOGGER_CONTEXT } from './cluster.constants.js';
import { ClusterExplorer } from './cluster.explorer.js';
import { ClusterHealthIndicator } from './cluster-health.indicator.js';
import { ClusterLifecycle } from './cluster.lifecycle.js';
import { CLUSTER_MODULE_OPTIONS, ConfigurableClusterModule } from './cluster.module-definition.js';
import { createGrainClientProviders, createGrainKindProviders, grainContextGuardProvider, splitFeatureEntries } from './cluster.providers.js';

/** The module `forFeature()` returns: kind registrations and clients, nothing global. */
@Module({})
export class ClusterFeatureModule {}

/**
 * The cluster member of a Nest application.
 *
 * - `ClusterModule.forRoot(options)` / `forRootAsync({...})`, once, in the root module: the
 *   member (global). Without a provider and identity lookup it runs embedded.
 * - `ClusterModule.forFeature([AccountGrain, 'transfer'])` in any module: hosts the grain
 *   classes listed as kinds on this member, and provides a `GrainClient` for each class and
 *   kind name listed (names for kinds hosted elsewhere or imported as types only).
 */
@Module({
  imports: [DiscoveryModule],
  providers: [
    {
      provide: Cluster,
      useFactory: (options: ClusterModuleOptions) => new Cluster({ ...options, logger: options.logger ?? new Logger(LOGGER_CONTEXT) }),
      inject: [CLUSTER_MODULE_OPTIONS],
    },
    grainContextGuardProvider,
    ClusterExplorer,
    ClusterLifecycle,
    ClusterHealthIndicator,
  ],
  exports: [Cluster, ClusterHealthIndicator, grainContextGuardProvider],
})
export class ClusterModule extends ConfigurableClusterModule {
  static forFeature(entries: ReadonlyArray<GrainClass | string>): DynamicModule {
    const { classes, names } = splitFeatureEntries(entries);
    const clients = createGrainClientProviders([...classes, ...names]);
    return {
      module: ClusterFeatureModule,
      providers: [...createGrainKindProviders(classes), ...clients],
      exports: clients,
    };
  }
}
