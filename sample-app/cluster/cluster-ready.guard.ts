import { type CanActivate, Injectable } from '@nestjs/common';
import { Cluster, ClusterUnavailableError } from 'nestjs-grains';

/**
 * True once this member knows the membership: the provider reported it (for a static
 * cluster, every listed member answered). Until then it does not know where every grain
 * lives: hash placement over the members it knows could activate an account here that
 * belongs to a member not heard from yet, and that account would then have two activations
 * (and two balances). Still true while the member leaves: its requests go to the others.
 */
export function clusterReady(cluster: Cluster): boolean {
  return cluster.health().membershipKnown;
}

/**
 * Refuses account and transfer requests with 503 (`GRAIN_CLUSTER_UNAVAILABLE`, Retry-After)
 * until `clusterReady`: in cluster mode, a member serves grain requests only once it knows
 * every member listed in `STATIC_MEMBERS`. `GET /cluster/members` is not guarded, so the
 * cluster forming can be watched.
 */
@Injectable()
export class ClusterReadyGuard implements CanActivate {
  /** Once known, the membership stays known: `health()` (the whole report) is not built per request after that. */
  private known = false;

  constructor(private readonly cluster: Cluster) {}

  canActivate(): boolean {
    if ((this.known ||= clusterReady(this.cluster))) return true;
    throw new ClusterUnavailableError(`Member ${this.cluster.memberId} has not heard from every member of the cluster yet.`);
  }
}
