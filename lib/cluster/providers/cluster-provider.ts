/** A member of the cluster as providers report it. */
export interface Member {
  /** The member's id: stable across restarts when configured (default: its advertised address, or random). */
  readonly id: string;
  /** New on every process start: tells a restarted member from the one before. */
  readonly incarnation: string;
  /** Where its remote listens (`host:port`); empty for the embedded member and client-only members. */
  readonly address: string;
  /** The kinds it hosts. */
  readonly kinds: readonly string[];
}

/** What a provider learns about, and may ask of, the member it runs in. */
export interface ProviderMember {
  readonly clusterName: string;
  readonly self: Member;
  /** Connect to `address` and handshake; what answers is reported through `ClusterProvider.onPeer`. */
  probe(address: string): void;
  log(level: 'log' | 'warn', message: string): void;
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
  /** A handshake showed who is at `address` (called by the remote, for providers that learn peers that way). */
  onPeer?(member: Member): void;
  /**
   * False while the membership is still being learned (a static member list not yet fully
   * answered). Lookups that place by membership alone wait for it. Absent: always complete.
   */
  readonly complete?: boolean;
}
