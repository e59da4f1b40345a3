import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { ClusterHealthIndicator } from 'nestjs-grains';

/**
 * `GET /health`: 200 while this member is ready (started, membership known, able to place
 * grains, not leaving), 503 otherwise — both with terminus' JSON body, whose `cluster` entry
 * holds the member count and whether the provider and the identity lookup can be reached:
 *
 * ```json
 * { "status": "ok", "info": { "cluster": { "status": "up", "memberId": "…", "ready": true, "leaving": false,
 *   "members": 3, "membershipKnown": true, "provider": { "name": "consul", "reachable": true },
 *   "identityLookup": { "name": "redis", "reachable": true, "ready": true } } }, "error": {}, "details": { … } }
 * ```
 *
 * A load balancer takes a member out of rotation on 503: while it leaves (SIGTERM), before it
 * has joined, and while it cannot place grains.
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly cluster: ClusterHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([() => this.cluster.isHealthy()]);
  }
}
