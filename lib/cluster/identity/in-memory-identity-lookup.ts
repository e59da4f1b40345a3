import type { Pid } from '../../actor/pid.js';
import type { IdentityLookup, LookupMember } from './identity-lookup.js';

/**
 * The embedded default: every grain lives on this one member.
 *
 * NOTE: epochs come from one counter for the whole member, so an identity's epoch grows
 * with every activation of it (by one or more) and survives passivation, without keeping an
 * entry per identity ever seen.
 */
export class InMemoryIdentityLookup implements IdentityLookup {
  readonly name = 'in-memory';
  private member: LookupMember | undefined;
  private readonly entries = new Map<string, Pid>();
  private lastEpoch = 0;

  async setup(member: LookupMember): Promise<void> {
    this.member = member;
  }

  async get(kind: string, identity: string): Promise<Pid> {
    const key = `${kind}/${identity}`;
    const existing = this.entries.get(key);
    if (existing !== undefined) return existing;
    if (this.member === undefined) throw new Error('InMemoryIdentityLookup used before setup()');
    const pid = this.member.activateLocal(kind, identity, ++this.lastEpoch);
    this.entries.set(key, pid);
    return pid;
  }

  remove(kind: string, identity: string, pid: Pid): void {
    const key = `${kind}/${identity}`;
    const entry = this.entries.get(key);
    if (entry !== undefined && entry.id === pid.id && entry.memberId === pid.memberId) this.entries.delete(key);
  }

  async shutdown(): Promise<void> {
    this.entries.clear();
  }
}
