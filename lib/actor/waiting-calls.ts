import type { Call } from './call.js';
import type { DeadlineSweeper, Sweepable } from './deadline-sweeper.js';

/**
 * Calls that wait outside any mailbox — for a lookup in progress, for the release of an ended
 * activation, or parked while an activation deactivates — still keep their deadlines: they
 * are swept like queued calls, and `onExpired` hears of each one whose deadline passed
 * (once; it is forgotten then). A call that goes on (delivered, sent on) is `delete`d.
 */
export class WaitingCalls implements Sweepable {
  private readonly calls = new Set<Call>();
  /** Earliest deadline among the calls; sweeps skip work before it. */
  private nextCheck = Infinity;
  private watched = false;

  constructor(
    private readonly sweeper: DeadlineSweeper,
    private readonly onExpired: (call: Call) => void,
  ) {}

  get size(): number {
    return this.calls.size;
  }

  add(call: Call): void {
    this.calls.add(call);
    if (call.deadline < this.nextCheck) this.nextCheck = call.deadline;
    if (!this.watched) {
      this.watched = true;
      this.sweeper.watch(this);
    }
  }

  delete(call: Call): void {
    this.calls.delete(call);
  }

  sweep(at: number): boolean {
    if (this.calls.size === 0) {
      this.watched = false;
      this.nextCheck = Infinity;
      return false;
    }
    if (at < this.nextCheck) return true;
    let next = Infinity;
    for (const call of this.calls) {
      if (call.settled) {
        this.calls.delete(call);
      } else if (call.deadline <= at) {
        this.calls.delete(call);
        this.onExpired(call);
      } else if (call.deadline < next) {
        next = call.deadline;
      }
    }
    this.nextCheck = next;
    return true;
  }
}
