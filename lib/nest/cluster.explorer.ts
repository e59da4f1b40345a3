import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, ModuleRef } from '@nestjs/core';
import { Cluster } from '../cluster/cluster.js';
import type { GrainClass } from '../cluster/kind.js';
import { createGrainInstanceFactory } from './grain-instance-factory.js';
import { GrainKindDiscoverable, GrainKindRegistration } from './grain-kind-registration.js';
import { GrainMetadataAccessor } from './grain-metadata.accessor.js';

/**
 * Finds every `@Grain()` class that `ClusterModule.forFeature()` registered to host (a
 * `GrainKindRegistration`) and hosts it on the member as a kind; kind names given to
 * `forFeature` provide clients only, and host nothing. Runs in `onModuleInit`, when every
 * singleton exists, so each kind's dependencies are resolved once, here, and a bad dependency
 * or option fails startup.
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
        ...(metadata.requestTimeout !== undefined && { requestTimeout: metadata.requestTimeout }),
        ...(metadata.placement !== undefined && { placement: metadata.placement }),
        interleave: metadata.interleave === true,
        ...(metadata.canActivate !== undefined && { canActivate: metadata.canActivate }),
        interleavedMethods: GrainMetadataAccessor.interleavedMethods(grainClass),
        idempotentMethods: GrainMetadataAccessor.idempotentMethods(grainClass),
      });
    }
  }

  private discoverGrainClasses(): Set<GrainClass> {
    const classes = new Set<GrainClass>();
    for (const wrapper of this.discovery.getProviders({ metadataKey: GrainKindDiscoverable.KEY })) {
      const registration: unknown = wrapper.instance;
      if (registration instanceof GrainKindRegistration) classes.add(registration.grainClass);
    }
    return classes;
  }
}
