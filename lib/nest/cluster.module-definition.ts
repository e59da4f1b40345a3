import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { ClusterModuleOptions } from './cluster-module-options.interface.js';

/**
 * `forRoot(options)` and `forRootAsync({ imports, inject, useFactory | useClass | useExisting })`.
 * The module is global: one cluster member per application.
 */
export const {
  ConfigurableModuleClass: ConfigurableClusterModule,
  MODULE_OPTIONS_TOKEN: CLUSTER_MODULE_OPTIONS,
  OPTIONS_TYPE: CLUSTER_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: CLUSTER_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<ClusterModuleOptions>({ moduleName: 'Cluster' })
  .setClassMethodName('forRoot')
  .setExtras({}, (definition) => ({ ...definition, global: true }))
  .build();
