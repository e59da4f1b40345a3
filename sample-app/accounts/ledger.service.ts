import { Injectable } from '@nestjs/common';
import { simulatedIo } from '../common/simulated-io.js';
import { StaleEpochError } from '../common/stale-epoch.error.js';

/** One account's stored state, with the epoch of the activation that wrote it. */
export interface LedgerEntry {
  readonly balance: number;
  readonly epoch: number;
}

/**
 * Where account balances live. This embedded default is an in-memory Map; a real deployment
 * would put a database behind the same async methods.
 *
 * NOTE: in cluster mode this Map is per process: each member keeps the balances of the
 * accounts it hosts. With hash placement an account always lives on the same member while
 * membership is stable, so its balance is found again. A member that restarts starts empty,
 * and after a membership change an account may activate on a member without its balance.
 * With `IDENTITY_LOOKUP=redis` the module provides `RedisLedgerService` under this token
 * instead: the same methods and fencing, with the balances in Redis.
 *
 * Writes are fenced: `save` refuses an epoch lower than the stored one, so a stale
 * activation of an account can never overwrite what a newer activation wrote.
 */
@Injectable()
export class LedgerService {
  private readonly entries = new Map<string, LedgerEntry>();

  /** The stored entry of an account, or undefined for an account never written. */
  async load(accountId: string): Promise<LedgerEntry | undefined> {
    await simulatedIo();
    return this.entries.get(accountId);
  }

  /**
   * Store an account's balance, written by the activation with `epoch`.
   * @throws StaleEpochError when a newer activation (a higher epoch) has already written.
   */
  async save(accountId: string, balance: number, epoch: number): Promise<void> {
    await simulatedIo();
    const stored = this.entries.get(accountId);
    if (stored !== undefined && epoch < stored.epoch) throw new StaleEpochError(`account "${accountId}"`, epoch, stored.epoch);
    this.entries.set(accountId, Object.freeze({ balance, epoch }));
  }
}
