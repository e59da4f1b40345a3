import { DiscoveryService } from '@nestjs/core';
import type { GrainClass } from '../cluster/kind.js';

/** Makes the `GrainKindRegistration` values of an application discoverable by the explorer. */
export const GrainKindDiscoverable = DiscoveryService.createDecorator<Record<string, never>>();

/**
 * What `ClusterModule.forFeature()` provides for each grain class it hosts: a plain
 * descriptor naming the class, which the explorer finds through Nest's DiscoveryService.
 *
 * NOTE: a descriptor, never an object with the grain's prototype: explorers of other modules
 * (such as @nestjs/schedule's, looking for `@Cron()` methods) walk every provider's value, and
 * would take one for an instance of the grain that nobody constructed. A grain instance only
 * ever exists inside an activation.
 */
@GrainKindDiscoverable()
export class GrainKindRegistration {
  constructor(readonly grainClass: GrainClass) {}
}
