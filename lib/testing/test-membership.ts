import type { Duration } from '../cluster/duration.js';
import type { ClusterProvider, Member, ProviderMember } from '../cluster/providers/cluster-provider.js';
import { StaticProvider } from '../cluster/providers/static-provider.js';

/** How often a test member dials a listed member that has not answered yet: they all listen already. */
const PROBE_INTERVAL: Duration = '50ms';

/**
 * The membership of a test cluster: the real `StaticProvider`, over the addresses the members'
 * remotes got from port 0. A member's provider is started once its remote listens (see
 * `Cluster.start`); it waits until every member's remote listens, then lists them all.
 *
 * NOTE: port 0 and a list made after binding, rather than free ports picked in advance: a port
 * found free and released can be taken by another process before the member binds it.
 */
export class TestMembership {
  private readonly addresses = new Map<number, string>();
  private readonly listed: Promise<readonly string[]>;
  private resolveListed!: (addresses: readonly string[]) => void;
  private rejectListed!: (error: unknown) => void;

  constructor(private readonly size: number) {
    this.listed = new Promise<readonly string[]>((resolve, reject) => {
      this.resolveListed = resolve;
      this.rejectListed = reject;
    });
    // NOTE: aborted while no member waits (one failed before its provider started): not unhandled.
    this.listed.catch(() => undefined);
  }

  /** The provider of member `index` (from 0). */
  provider(index: number): ClusterProvider {
    return new TestMemberProvider(this, index);
  }

  /** Member `index` listens at `address` ('' when it serves nothing); resolves to every hosting member's address once all listen. */
  join(index: number, address: string): Promise<readonly string[]> {
    this.addresses.set(index, address);
    if (this.addresses.size === this.size) {
      const indexes = [...this.addresses.keys()].sort((a, b) => a - b);
      this.resolveListed(indexes.map((i) => this.addresses.get(i)!).filter((a) => a !== ''));
    }
    return this.listed;
  }

  /** A member failed to start: the others stop waiting for its address, and fail to start with `error`. */
  abort(error: unknown): void {
    this.rejectListed(error);
  }
}

/** One member's view of a `TestMembership`: waits for the list, then is a `StaticProvider` over it. */
class TestMemberProvider implements ClusterProvider {
  readonly name = 'test-static';
  private inner: StaticProvider | undefined;
  private stopped = false;

  constructor(
    private readonly membership: TestMembership,
    private readonly index: number,
  ) {}

  async start(member: ProviderMember): Promise<void> {
    const members = await this.membership.join(this.index, member.self().address);
    if (this.stopped) return;
    this.inner = new StaticProvider({ members, probeInterval: PROBE_INTERVAL });
    await this.inner.start(member);
  }

  confirmed(address: string, peer: Member, leaving: boolean): void {
    this.inner?.confirmed(address, peer, leaving);
  }

  async shutdown(): Promise<void> {
    this.stopped = true;
    await this.inner?.shutdown();
  }
}
