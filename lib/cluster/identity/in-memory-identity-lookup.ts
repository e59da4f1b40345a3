import type { Pid } from '../../actor/pid.js';
import type { IdentityLookup, LookupMember } from './identity-lookup.js';

/**
 * The embedded default: every grain lives on this one member. Keeps each identity's epoch
 * across passivation, so `ctx.epoch` grows with every activation as it does with Redis.
 */
export class InMemoryIdentityLookup implements IdentityLookup {
  readonly name = 'in-memory';
  private member: LookupMember | undefined;
  private readonly entries = new Map<string, Pid>();
  private readonly epochs = new Map<string, number>();

  async setup(member: LookupMember): Promise<void> {
    this.member = member;
  }

  async get(kind: string, identity: string): Promise<Pid> {
    const key = `${kind}/${identity}`;
    const existing = this.entries.get(key);
    if (existing !== undefined) return existing;
    if (this.member === undefined) throw new Error('InMemoryIdentityLookup used before setup()');
    const epoch = (this.epochs.get(key) ?? 0) + 1;
    this.epochs.set(key, epoch);
    const pid = this.member.activateLocal(kind, identity, epoch);
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
