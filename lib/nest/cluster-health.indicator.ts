import { Injectable } from '@nestjs/common';
import { Cluster, type ClusterHealth } from '../cluster/cluster.js';

/** What the indicator reports under its key (the shape `@nestjs/terminus` reads: `status` up or down, then details). */
export type ClusterHealthDetails = { readonly status: 'up' | 'down'; readonly memberId: string } & Omit<ClusterHealth, 'ready'> & {
    readonly ready: boolean;
  };

/** A `@nestjs/terminus` health indicator result: `{ [key]: { status, ...details } }`. */
export type ClusterHealthResult<Key extends string = 'cluster'> = { readonly [K in Key]: ClusterHealthDetails };

/**
 * The member's health, for `@nestjs/terminus` (or any health endpoint): up while the member
 * is ready — started, membership known, able to place grains, not leaving — with the member
 * count and whether the provider and the identity lookup can be reached.
 *
 * ```ts
 * @Get('health') @HealthCheck()
 * check() { return this.health.check([() => this.cluster.isHealthy()]); }
 * ```
 *
 * It needs nothing from terminus itself: the result is the plain object terminus reads, so
 * the library does not depend on it.
 */
@Injectable()
export class ClusterHealthIndicator {
  constructor(private readonly cluster: Cluster) {}

  /** Up when the member is ready; down otherwise (leaving, not started, no lease, membership unknown). */
  isHealthy<const Key extends string = 'cluster'>(key?: Key): ClusterHealthResult<Key> {
    const health = this.cluster.health();
    const details: ClusterHealthDetails = { status: health.ready ? 'up' : 'down', memberId: this.cluster.memberId, ...health };
    return { [key ?? 'cluster']: details } as ClusterHealthResult<Key>;
  }
}
