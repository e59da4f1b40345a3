/** A withdrawal (also the withdrawal side of a transfer) asked for more than the balance. */
export class InsufficientFundsError extends Error {
  /** Stable, machine-readable code; the HTTP layer maps it to 409. */
  readonly code = 'INSUFFICIENT_FUNDS';

  constructor(
    readonly accountId: string,
    readonly requested: number,
    readonly available: number,
  ) {
    super(`Account "${accountId}" has insufficient funds: balance ${available}, requested ${requested}.`);
    this.name = 'InsufficientFundsError';
  }
}
