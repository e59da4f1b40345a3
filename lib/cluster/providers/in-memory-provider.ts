import type { ClusterProvider, ProviderMember } from './cluster-provider.js';

/**
 * The embedded default: a cluster of this one member, with nothing to discover. Also the
 * provider for in-process tests.
 */
export class InMemoryProvider implements ClusterProvider {
  readonly name = 'in-memory';

  async start(member: ProviderMember): Promise<void> {
    member.setMembers([member.self()], true);
  }

  async shutdown(): Promise<void> {}
}
