import { Controller, Get } from '@nestjs/common';
import { Cluster, type Member } from 'nestjs-grains';
import { clusterReady } from './cluster-ready.guard.js';

/** What `GET /cluster/members` answers. */
export interface ClusterMembersView {
  readonly clusterName: string;
  /** The member that answered. */
  readonly memberId: string;
  /** The kinds this member hosts. */
  readonly kinds: readonly string[];
  /** Every member known to this one, itself included. */
  readonly members: readonly Member[];
  /**
   * True once this member has heard from every member it was configured with (always true
   * embedded). Until then it answers account and transfer requests with 503.
   */
  readonly ready: boolean;
}

/** The cluster as this member sees it. */
@Controller('cluster')
export class ClusterController {
  constructor(private readonly cluster: Cluster) {}

  /** `GET /cluster/members` → `{ clusterName, memberId, kinds, members, ready }`. */
  @Get('members')
  members(): ClusterMembersView {
    const { cluster } = this;
    return { clusterName: cluster.clusterName, memberId: cluster.memberId, kinds: cluster.kindNames, members: cluster.members(), ready: clusterReady(cluster) };
  }
}
