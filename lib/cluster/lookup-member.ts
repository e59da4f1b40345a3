import type { ActivationRegistry } from './activation/activation-registry.js';
import type { LookupMember } from './identity/identity-lookup.js';
import type { MemberLoad } from './gossip/gossiper.js';
import type { ClusterKind } from './kind.js';
import type { LocalMember } from './local-member.js';
import type { ClusterLogger } from './logger.js';
import type { MemberList } from './member-list.js';
import type { RequestRouter } from './request-router.js';

/** The parts of a member an identity lookup may reach. */
export interface LookupMemberParts {
  readonly member: LocalMember;
  /** The gossiped load of each member, for least-loaded placement. */
  readonly load?: (memberId: string) => MemberLoad | undefined;
  readonly members: MemberList;
  readonly activations: ActivationRegistry;
  /** The kinds hosted here, for their own placement. */
  readonly kinds: ReadonlyMap<string, ClusterKind>;
  readonly router: RequestRouter;
  readonly logger: ClusterLogger;
}

/** The member as its identity lookup sees it: exactly `LookupMember`, nothing more. */
export function lookupMemberOf({ member, members, activations, kinds, router, logger, load }: LookupMemberParts): LookupMember {
  return {
    clusterName: member.clusterName,
    memberId: member.id,
    get incarnation() {
      return member.incarnation;
    },
    self: () => member.self(),
    members: () => members.placeable(),
    hashMembers: () => members.notLeaving(),
    ...(load !== undefined && { load }),
    membershipComplete: () => members.complete,
    // NOTE: a leaving member hosts nothing new: it claims nothing, and places nothing on itself.
    hostsKind: (kind) => !members.isLeaving && member.hosts(kind),
    placementOf: (kind) => kinds.get(kind)?.placement,
    newActivationId: () => activations.newActivationId(),
    activateLocal: (kind, identity, epoch, activationId) => activations.activate(kind, identity, epoch, activationId),
    isRetired: (activationId) => activations.isRetired(activationId),
    fenceAll: (reason) => {
      const fenced = activations.fenceAll();
      router.pidCache.clear();
      logger.warn(`Member ${member.id} fenced ${fenced} activation(s): ${reason}. It continues as incarnation ${member.incarnation}.`);
    },
    log: (level, message) => logger[level](message),
  };
}
