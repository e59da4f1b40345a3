/** An amount is not a positive, finite money amount (see `amountProblem`). */
export class InvalidAmountError extends Error {
  /** Stable, machine-readable code; the HTTP layer maps it to 400. */
  readonly code = 'INVALID_AMOUNT';

  constructor(message: string) {
    super(message);
    this.name = 'InvalidAmountError';
  }
}
