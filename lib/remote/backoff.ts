/** Reconnection backoff: exponential with full jitter, capped. */
export const INITIAL_BACKOFF_MS = 100;
export const MAX_BACKOFF_MS = 5_000;
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
