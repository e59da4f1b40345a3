/**
 * A store (the Redis ledger or transfer journal) did not do what was asked: it was not
 * reachable, refused the command, or did not answer in time. Two cases, told apart by `code`:
 *
 * - `STORE_UNAVAILABLE`: certainly not applied (never sent, refused by the server, or a read).
 *   The HTTP layer answers 503 with Retry-After.
 * - `STORE_OUTCOME_UNKNOWN`: a write was sent and not confirmed (timed out, or the connection
 *   was lost): it may or may not have been applied. The HTTP layer answers 504, and a grain
 *   that sees it deactivates, so that its next activation reloads what the store really holds.
 */
export class StoreUnavailableError extends Error {
  /** Stable, machine-readable code (see the class comment). */
  readonly code: 'STORE_UNAVAILABLE' | 'STORE_OUTCOME_UNKNOWN';

  constructor(
    /** Which store and operation, such as `ledger save of account "alice"`. */
    readonly operation: string,
    /** True when a write was sent and not confirmed: it may have been applied. */
    readonly outcomeUnknown: boolean,
    /** What the client said (no secrets: the Redis client never puts the password in its errors). */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      outcomeUnknown
        ? `The ${operation} was sent to Redis but not confirmed (${reason}); it may or may not have been applied.`
        : `The ${operation} failed: Redis is not available (${reason}); nothing was changed.`,
      options,
    );
    this.name = 'StoreUnavailableError';
    this.code = outcomeUnknown ? 'STORE_OUTCOME_UNKNOWN' : 'STORE_UNAVAILABLE';
  }
}
