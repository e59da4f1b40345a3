/**
 * The address of a process (an activation): the member that hosts it and its id there.
 *
 * NOTE: `process` is a shortcut to the local process for Pids of this member; it is never
 * put on the wire. A Pid whose process is gone still compares by `memberId` + `id`.
 */
export interface Pid {
  readonly memberId: string;
  readonly id: string;
  /** The local process, when the Pid belongs to this member. */
  readonly process?: unknown;
}
