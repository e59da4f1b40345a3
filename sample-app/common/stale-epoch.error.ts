/**
 * A store refused a write, or an activation's load, because it carried an older epoch than the
 * one already stored: a newer activation of the same grain has loaded or written since, so the
 * caller is a stale (zombie) activation and must stop. This is the fencing-token pattern around
 * `GrainContext.epoch`.
 */
export class StaleEpochError extends Error {
  /** Stable, machine-readable code (the HTTP layer maps it to 503: retry reaches a fresh activation). */
  readonly code = 'STALE_EPOCH';

  constructor(
    /** What was written or loaded, such as `account "alice"`. */
    readonly target: string,
    /** The epoch the refused write or load carried. */
    readonly epoch: number,
    /** The epoch already stored. */
    readonly storedEpoch: number,
    /** What was refused: a write, or the load of an activation (`loadAndFence`). */
    readonly operation: 'write' | 'load' = 'write',
  ) {
    super(
      `${operation === 'load' ? 'Load of' : 'Write to'} ${target} refused: epoch ${epoch} is older than the stored epoch ${storedEpoch}; a newer activation owns it.`,
    );
    this.name = 'StaleEpochError';
  }
}
