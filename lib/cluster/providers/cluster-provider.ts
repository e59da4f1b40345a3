/** A member of the cluster as providers report it. */
export interface Member {
  /** The member's id: stable across restarts when configured (default: its advertised address, or random). */
  readonly id: string;
  /** New on every process start and every rejoin after fencing: tells the runs of a member apart. */
  readonly incarnation: string;
  /** Where its remote listens (`host:port`); empty for the embedded member and client-only members. */
  readonly address: string;
  /** The kinds it hosts. */
  readonly kinds: readonly string[];
}

/** What a provider says of its own reachability, for health and logs. */
export interface ProviderHealth {
  /** False while the provider's service (Consul, ...) cannot be reached; the last member list is kept meanwhile. */
  readonly reachable: boolean;
  /** What is wrong, when something is. */
  readonly detail?: string;
}

/** What a provider learns about, and may ask of, the member it runs in. */
export interface ProviderMember {
  readonly clusterName: string;
  /** This member as others should see it now (its incarnation changes when it rejoins after fencing). */
  self(): Member;
  /**
   * The provider's whole current view of the cluster: the members that count now. This
   * member need not be in it (the runtime always counts itself). `complete` false while the
   * membership is still being learned (hash placement waits for it).
   */
  setMembers(members: readonly Member[], complete?: boolean): void;
  /**
   * Dial `address` and handshake; what answers on that connection is reported through
   * `ClusterProvider.confirmed`, now and whenever it changes (a restart, a new incarnation).
   * For providers whose list holds addresses only.
   */
  probe(address: string): void;
  log(level: 'log' | 'warn', message: string): void;
}

/**
 * Membership: who is in the cluster. Consul, a static list, or in memory. The provider is the
 * only source of membership: a handshake confirms who is at an address the provider gave, it
 * never adds a member or changes one.
 */
export interface ClusterProvider {
  /** A name for logs and health, such as `in-memory` or `consul`. */
  readonly name: string;
  /** Join the cluster; report members through `member.setMembers`. */
  start(member: ProviderMember): Promise<void>;
  /** This member changed (a new incarnation after it was fenced): publish it promptly. */
  selfChanged?(self: Member): void;
  /** Stop new placements here (deregister, or mark leaving); the member drains after this. Keeps reporting members. */
  leave?(): Promise<void>;
  /** Leave the cluster for good and stop (deregister if `leave` did not). */
  shutdown(): Promise<void>;
  /**
   * A handshake (or an announcement) on a connection this member dialled to `address` showed
   * who is there, and whether it is leaving the cluster. Called for every dialled connection;
   * providers count it for addresses they gave to `probe` only.
   */
  confirmed?(address: string, member: Member, leaving: boolean): void;
  /** Reachability of the provider's service, for health. Absent: always reachable. */
  health?(): ProviderHealth;
}
