/** A member of the cluster as providers report it. */
export interface Member {
  /** Unique per member process incarnation. */
  readonly id: string;
  /** Where its remote listens (`host:port`); absent for the embedded single member. */
  readonly address?: string;
  /** The kinds it hosts. */
  readonly kinds: readonly string[];
}

/** What a provider learns about the member it runs in. */
export interface ProviderMember {
  readonly clusterName: string;
  readonly self: Member;
}

/**
 * Membership: who is in the cluster. Consul, a static list, or in memory; the runtime asks
 * nothing else of it.
 */
export interface ClusterProvider {
  /** A name for logs and health, such as `in-memory` or `consul`. */
  readonly name: string;
  /** Join the cluster. */
  start(member: ProviderMember): Promise<void>;
  /** The members known now, this one included. */
  members(): readonly Member[];
  /** Leave the cluster (graceful: deregister). */
  shutdown(): Promise<void>;
}
