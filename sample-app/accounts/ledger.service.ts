import { Injectable } from '@nestjs/common';
import { simulatedIo } from '../common/simulated-io.js';
import { StaleEpochError } from '../common/stale-epoch.error.js';

/**
 * One account's stored state: its balance, and the fence, the highest epoch of an activation
 * that loaded or wrote it. An account an activation loaded but never wrote holds balance 0.
 */
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
 * Fenced by epoch, in two steps that are each atomic: an activation loads with
 * `loadAndFence`, which raises the stored epoch to its own (and refuses it when a newer
 * activation has loaded already); `save` refuses an epoch lower than the stored one. So once a
 * newer activation has loaded an account, a stale one can no longer write it: not even in the
 * window before the newer one's first write, where a stale write would be accepted and then
 * silently overwritten.
 */
@Injectable()
export class LedgerService {
  private readonly entries = new Map<string, LedgerEntry>();

  /**
   * The stored entry of an account, or undefined for an account never loaded or written. A
   * plain read, which fences nothing (for tests and tools): an activation uses `loadAndFence`.
   */
  async load(accountId: string): Promise<LedgerEntry | undefined> {
    await simulatedIo();
    return this.entries.get(accountId);
  }

  /**
   * Load an account's balance for the activation with `epoch` (0 for an account never
   * written), raising the stored epoch to `epoch` in the same step: from then on a write from
   * an older activation is refused, even before this activation's first write.
   * @throws StaleEpochError when a newer activation (a higher epoch) has already loaded or written.
   */
  async loadAndFence(accountId: string, epoch: number): Promise<number> {
    await simulatedIo();
    const stored = this.entries.get(accountId);
    if (stored !== undefined && epoch < stored.epoch) throw new StaleEpochError(`account "${accountId}"`, epoch, stored.epoch, 'load');
    const balance = stored?.balance ?? 0;
    this.entries.set(accountId, Object.freeze({ balance, epoch }));
    return balance;
  }

  /**
   * Store an account's balance, written by the activation with `epoch`.
   * @throws StaleEpochError when a newer activation (a higher epoch) has already loaded or written.
   */
  async save(accountId: string, balance: number, epoch: number): Promise<void> {
    await simulatedIo();
    const stored = this.entries.get(accountId);
    if (stored !== undefined && epoch < stored.epoch) throw new StaleEpochError(`account "${accountId}"`, epoch, stored.epoch);
    this.entries.set(accountId, Object.freeze({ balance, epoch }));
  }
}
