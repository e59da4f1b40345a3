/**
 * Reconnection backoff: exponential with full jitter, capped.
 *
 * NOTE: the cap is low on purpose: calls for a peer that just failed wait behind this timer,
 * and with a leased lookup the grains of a dead member move once its lease lapses (1.5 s by
 * default); a 5 s cap made failover wait for reconnects the lookup no longer needed.
 */
export const INITIAL_BACKOFF_MS = 50;
export const MAX_BACKOFF_MS = 250;
export const BACKOFF_MULTIPLIER = 2;

export class Backoff {
  private attempt = 0;

  /** The wait before the next attempt: random in [0, min(MAX, INITIAL × MULTIPLIER^n)]. */
  next(): number {
    const ceiling = Math.min(MAX_BACKOFF_MS, INITIAL_BACKOFF_MS * BACKOFF_MULTIPLIER ** this.attempt);
    this.attempt++;
    return Math.round(Math.random() * ceiling);
  }

  reset(): void {
    this.attempt = 0;
  }
}
