/** A transfer id that already completed was sent again with different accounts or amount. */
export class TransferIdReusedError extends Error {
  /** Stable, machine-readable code; the HTTP layer maps it to 409. */
  readonly code = 'TRANSFER_ID_REUSED';

  constructor(readonly transferId: string) {
    super(`Transfer "${transferId}" already completed with different accounts or amount; use a new transfer id.`);
    this.name = 'TransferIdReusedError';
  }
}
