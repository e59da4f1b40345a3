import { now } from './clock.js';

/** Something with deadlines to watch; `sweep` returns false once it has none left. */
export interface Sweepable {
  sweep(at: number): boolean;
}

/** How often pending deadlines are checked: a call times out at most this late. */
export const SWEEP_INTERVAL_MS = 10;

/**
 * One coarse timer for every deadline of a cluster member.
 *
 * NOTE: a `setTimeout` per call costs about a microsecond to arm and clear, more than the
 * rest of a local grain call. Instead, a mailbox with pending work registers here once and
 * is swept every SWEEP_INTERVAL_MS until it is idle; a call therefore times out up to that
 * much after its deadline. The timer runs only while something is registered, and never
 * keeps the process alive.
 */
export class DeadlineSweeper {
  private readonly watched = new Set<Sweepable>();
  private timer: NodeJS.Timeout | undefined;

  watch(item: Sweepable): void {
    this.watched.add(item);
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
      this.timer.unref();
    }
  }

  /** Sweep now (also used by the interval). */
  sweep(): void {
    const at = now();
    for (const item of this.watched) {
      if (!item.sweep(at)) this.watched.delete(item);
    }
    if (this.watched.size === 0) this.stop();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
