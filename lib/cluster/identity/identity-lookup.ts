import type { Pid } from '../../actor/pid.js';
import type { Member } from '../providers/cluster-provider.js';

/** What a lookup may ask of the member it runs in. */
export interface LookupMember {
  readonly memberId: string;
  /** The members known now (this one included), from the cluster provider. */
  members(): readonly Member[];
  /**
   * Create (or return the existing) local activation of `kind/identity` with the given
   * epoch, and give its Pid. Only the holder of the identity's claim may call this.
   */
  activateLocal(kind: string, identity: string, epoch: number): Pid;
}

/**
 * Where each grain lives. The lookup is the single authority on placement: it finds the
 * activation of an identity, or places one (claiming the identity first) and returns its Pid.
 */
export interface IdentityLookup {
  /** A name for logs and health, such as `in-memory` or `redis`. */
  readonly name: string;
  /** Called once when the member starts. */
  setup(member: LookupMember): Promise<void>;
  /** The Pid of the activation of `kind/identity`, placing and activating it if there is none. */
  get(kind: string, identity: string): Promise<Pid>;
  /** An activation of this member stopped: release its entry if it still holds `pid`. */
  remove(kind: string, identity: string, pid: Pid): void;
  /** Called once when the member stops, after its activations are gone. */
  shutdown(): Promise<void>;
}
