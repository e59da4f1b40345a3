import { Injectable } from '@nestjs/common';
import { simulatedIo } from '../common/simulated-io.js';
import { StaleEpochError } from '../common/stale-epoch.error.js';

/** The recorded outcome of a completed transfer; what `POST /transfers` answers. */
export interface TransferResult {
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly amount: number;
  readonly status: 'completed';
  /** ISO 8601. A repeated request answers the same record, this timestamp included. */
  readonly completedAt: string;
}

/**
 * Where completed transfers are recorded, so that a transfer id moves money once, even after
 * its grain was deactivated and activated again. In memory in this embedded default; fenced
 * by epoch like the ledger. In cluster mode it is per process, like the ledger: each member
 * records the transfers it hosts. With `IDENTITY_LOOKUP=redis` the module provides
 * `RedisTransferJournal` under this token instead.
 */
@Injectable()
export class TransferJournalService {
  private readonly entries = new Map<string, { readonly result: TransferResult; readonly epoch: number }>();

  /** The recorded result of a transfer, or undefined when it never completed. */
  async load(transferId: string): Promise<TransferResult | undefined> {
    await simulatedIo();
    return this.entries.get(transferId)?.result;
  }

  /**
   * Record a completed transfer, written by the activation with `epoch`.
   * @throws StaleEpochError when a newer activation (a higher epoch) has already written.
   */
  async save(result: TransferResult, epoch: number): Promise<void> {
    await simulatedIo();
    const stored = this.entries.get(result.id);
    if (stored !== undefined && epoch < stored.epoch) throw new StaleEpochError(`transfer "${result.id}"`, epoch, stored.epoch);
    this.entries.set(result.id, Object.freeze({ result: Object.freeze({ ...result }), epoch }));
  }
}
