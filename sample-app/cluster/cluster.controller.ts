import { Controller, Get } from '@nestjs/common';
import { Cluster, type GossipMemberStatus, type Member } from 'nestjs-grains';
import { clusterReady } from './cluster-ready.guard.js';

/** A member as `GET /cluster/members` shows it: what the provider lists, and what gossip says of it. */
export interface ClusterMemberView extends Member {
  /** `alive`, `suspected` (its heartbeat stopped or its connection dropped: no new grains go there) or `leaving`. */
  readonly status: GossipMemberStatus['status'];
  /** Milliseconds since its heartbeat last advanced here; null before the first (or when it does not gossip). */
  readonly heartbeatAgeMs: number | null;
  /** Activations it reported in its last heartbeat; null before the first. */
  readonly activations: number | null;
}

/** What `GET /cluster/members` answers. */
export interface ClusterMembersView {
  readonly clusterName: string;
  /** The member that answered. */
  readonly memberId: string;
  /** The kinds this member hosts. */
  readonly kinds: readonly string[];
  /** Every member known to this one, itself first, with its gossip status. */
  readonly members: readonly ClusterMemberView[];
  /**
   * True once this member has heard from every member it was configured with (always true
   * embedded). Until then it answers account and transfer requests with 503.
   */
  readonly ready: boolean;
  /** Whether every member has gossiped the same member set as this one, and this one's topology hash. */
  readonly topology: { readonly consensus: boolean; readonly hash: string };
}

/** The cluster as this member sees it. */
@Controller('cluster')
export class ClusterController {
  constructor(private readonly cluster: Cluster) {}

  /** `GET /cluster/members` → `{ clusterName, memberId, kinds, members, ready, topology }`. */
  @Get('members')
  members(): ClusterMembersView {
    const { cluster } = this;
    const gossip = new Map(cluster.gossip.members().map((status) => [status.id, status]));
    const members = cluster.members().map((member): ClusterMemberView => {
      const status = gossip.get(member.id);
      return {
        ...member,
        status: status?.status ?? 'alive',
        heartbeatAgeMs: status?.heartbeatAgeMs ?? null,
        activations: status?.load?.activations ?? null,
      };
    });
    const { consensus, hash } = cluster.topologyConsensus();
    return {
      clusterName: cluster.clusterName,
      memberId: cluster.memberId,
      kinds: cluster.kindNames,
      members,
      ready: clusterReady(cluster),
      topology: { consensus, hash },
    };
  }
}
