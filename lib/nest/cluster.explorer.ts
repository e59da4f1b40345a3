import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, ModuleRef } from '@nestjs/core';
import { Cluster } from '../cluster/cluster.js';
import type { GrainClass } from '../cluster/kind.js';
import { GrainDiscoverable } from './decorators/grain.decorator.js';
import { createGrainInstanceFactory } from './grain-instance-factory.js';
import { GrainMetadataAccessor } from './grain-metadata.accessor.js';

/**
 * Finds every `@Grain()` class registered through `ClusterModule.forFeature()` and hosts it
 * on the member as a kind. Runs in `onModuleInit`, when every singleton exists, so each
 * kind's dependencies are resolved once, here, and a bad dependency fails startup.
 */
@Injectable()
export class ClusterExplorer implements OnModuleInit {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly moduleRef: ModuleRef,
    private readonly cluster: Cluster,
  ) {}

  onModuleInit(): void {
    for (const grainClass of this.discoverGrainClasses()) {
      const metadata = GrainMetadataAccessor.metadataOf(grainClass);
      this.cluster.registerKind({
        name: metadata.kind,
        grainClass,
        create: createGrainInstanceFactory(grainClass, this.moduleRef),
        ...(metadata.idleTimeout !== undefined && { idleTimeout: metadata.idleTimeout }),
        ...(metadata.maxQueueLength !== undefined && { maxQueueLength: metadata.maxQueueLength }),
        interleave: metadata.interleave === true,
        ...(metadata.canActivate !== undefined && { canActivate: metadata.canActivate }),
        interleavedMethods: GrainMetadataAccessor.interleavedMethods(grainClass),
        idempotentMethods: GrainMetadataAccessor.idempotentMethods(grainClass),
      });
    }
  }

  private discoverGrainClasses(): Set<GrainClass> {
    const classes = new Set<GrainClass>();
    for (const wrapper of this.discovery.getProviders({ metadataKey: GrainDiscoverable.KEY })) {
      const instance = wrapper.instance as object | undefined;
      const grainClass = (instance?.constructor ?? wrapper.metatype) as GrainClass | undefined;
      if (grainClass !== undefined) classes.add(grainClass);
    }
    return classes;
  }
}
