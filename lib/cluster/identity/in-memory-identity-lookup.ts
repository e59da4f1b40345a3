import type { Pid } from '../../actor/pid.js';
import type { IdentityLookup, LookupMember } from './identity-lookup.js';

/**
 * The embedded default: every grain lives on this one member.
 *
 * NOTE: it keeps nothing per identity: the member's own activations are the only entries
 * there could be (`activateLocal` returns the live one, or makes it), so a copy here would
 * only cost memory per activation. Epochs come from one counter for the whole member, so an
 * identity's epoch grows with every activation of it (by one or more) and survives
 * passivation.
 */
export class InMemoryIdentityLookup implements IdentityLookup {
  readonly name = 'in-memory';
  private member: LookupMember | undefined;
  private lastEpoch = 0;

  async setup(member: LookupMember): Promise<void> {
    this.member = member;
  }

  async get(kind: string, identity: string): Promise<Pid> {
    if (this.member === undefined) throw new Error('InMemoryIdentityLookup used before setup()');
    return this.member.activateLocal(kind, identity, ++this.lastEpoch);
  }

  /** Nothing to forget: the member dropped the activation. */
  remove(_kind: string, _identity: string, _pid: Pid): void {}

  async shutdown(): Promise<void> {}
}
