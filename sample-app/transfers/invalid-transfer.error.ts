/** A transfer's accounts are not valid: missing, malformed, or the same account twice. */
export class InvalidTransferError extends Error {
  /** Stable, machine-readable code; the HTTP layer maps it to 400. */
  readonly code = 'INVALID_TRANSFER';

  constructor(message: string) {
    super(message);
    this.name = 'InvalidTransferError';
  }
}
