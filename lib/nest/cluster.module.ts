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
 * - `ClusterModule.forFeature([...])` in any module that hosts or calls grains; see `forFeature`.
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
  /**
   * Hosting a kind and calling it are separate:
   *
   * - a grain class (`forFeature([AccountGrain])`) hosts its kind on this member: activations of
   *   it may be placed here. It also provides the kind's client.
   * - a kind name (`forFeature(['account'])`) provides the kind's client only: this member hosts
   *   nothing, and calls go to the members that host the kind (an API gateway, another service,
   *   or a module that may import the grain as a type only). The kind's `@Grain()` options are
   *   not known from its name: unless this member also hosts the kind, a call's deadline is its
   *   own `timeout`, else this member's `requestTimeout`.
   *
   * Both may be listed together (`[AccountGrain, 'transfer']`). Each client is injected with
   * `@InjectGrainClient(AccountGrain | 'account')` in this module, or in one importing it.
   */
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
