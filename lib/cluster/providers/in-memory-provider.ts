import type { ClusterProvider, Member, ProviderMember } from './cluster-provider.js';

/**
 * The embedded default: a cluster of this one member, with nothing to discover. Also the
 * provider for in-process tests.
 */
export class InMemoryProvider implements ClusterProvider {
  readonly name = 'in-memory';
  private self: Member | undefined;

  async start(member: ProviderMember): Promise<void> {
    this.self = member.self;
  }

  members(): readonly Member[] {
    return this.self === undefined ? [] : [this.self];
  }

  async shutdown(): Promise<void> {
    this.self = undefined;
  }
}
