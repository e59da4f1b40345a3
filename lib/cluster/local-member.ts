import { randomUUID } from 'node:crypto';
import type { Member } from './providers/cluster-provider.js';

/**
 * This member as the cluster knows it: its id, its current incarnation, where its remote
 * listens and the kinds it hosts. The incarnation is new on every start and every time the
 * member is fenced and rejoins; it tells the runs of a member apart.
 */
export class LocalMember {
  private current = randomUUID();
  /** Where this member's remote listens (`host:port`), once started; '' without a server. */
  address = '';

  constructor(
    readonly clusterName: string,
    readonly id: string,
    // NOTE: only the names count here. Not typed ClusterKind: kind.ts reaches this file (through
    // placement and gossip), so importing it back would close an import cycle.
    private readonly kinds: ReadonlyMap<string, unknown>,
  ) {}

  get incarnation(): string {
    return this.current;
  }

  /** Told of every new incarnation (the remote announces it to the members calling this one). */
  onNewIncarnation: (() => void) | undefined;

  /** Take a new incarnation (after being fenced); returns it. */
  renewIncarnation(): string {
    this.current = randomUUID();
    this.onNewIncarnation?.();
    return this.current;
  }

  /** Whether this member hosts `kind`. */
  hosts(kind: string): boolean {
    return this.kinds.has(kind);
  }

  /** The kinds hosted here. */
  get kindNames(): string[] {
    return [...this.kinds.keys()];
  }

  private selfValue: Member | undefined;

  /**
   * This member as others see it: one frozen record until its incarnation, address or kinds
   * change (placement asks for it on every new activation).
   */
  self(): Member {
    const cached = this.selfValue;
    if (cached !== undefined && cached.incarnation === this.current && cached.address === this.address && cached.kinds.length === this.kinds.size) {
      return cached;
    }
    return (this.selfValue = Object.freeze({ id: this.id, incarnation: this.current, address: this.address, kinds: Object.freeze(this.kindNames) }));
  }
}
