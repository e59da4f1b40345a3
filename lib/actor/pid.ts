/**
 * The address of a process (an activation): the member that hosts it and its id there.
 *
 * NOTE: `process` is a shortcut to the local process for Pids of this member; it is never
 * put on the wire. A Pid whose process is gone still compares by `memberId` + `id`.
 */
export interface Pid {
  readonly memberId: string;
  /** The member incarnation the process belongs to; a message for another gets "not here". */
  readonly incarnation?: string;
  /** Where the member's remote listens; empty for this member. */
  readonly address?: string;
  /** The process on that member ('' when only the member is known: it activates on demand). */
  readonly id: string;
  /** The local process, when the Pid belongs to this member. */
  readonly process?: unknown;
}
