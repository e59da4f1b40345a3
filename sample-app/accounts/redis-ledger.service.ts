import { Injectable } from '@nestjs/common';
import { StaleEpochError } from '../common/stale-epoch.error.js';
import { BankRedis } from '../redis/bank-redis.js';
import type { LedgerEntry, LedgerService } from './ledger.service.js';

/**
 * The ledger in Redis (with `IDENTITY_LOOKUP=redis`): the same methods and the same fencing as
 * the in-memory `LedgerService`, and provided under its token, so `AccountGrain` is unchanged.
 * Balances outlive the member that wrote them: an account activated again on another member
 * (after a crash, or after passivation) loads what the last activation wrote.
 *
 * One hash per account, `{keyPrefix:cluster}:ledger:<account id>` = `{ balance, epoch }`,
 * written through on every change by one atomic script that refuses an epoch lower than the
 * stored one (`StaleEpochError`). With the Redis identity lookup `ctx.epoch` grows with every
 * activation of an account in the whole cluster, so it is a fencing token across members: a
 * stale activation (a member that lost its lease but has not noticed yet) can never overwrite
 * what a newer activation wrote.
 *
 * Failures are `StoreUnavailableError` (see `BankRedis` for the connection policy).
 */
@Injectable()
export class RedisLedgerService implements Pick<LedgerService, 'load' | 'save'> {
  constructor(private readonly redis: BankRedis) {}

  /** The stored entry of an account, or undefined for an account never written. */
  async load(accountId: string): Promise<LedgerEntry | undefined> {
    const key = this.redis.key('ledger', accountId);
    const [balance, epoch] = await this.redis.read(`ledger load of account "${accountId}"`, key, ['balance', 'epoch']);
    if (balance === null && epoch === null) return undefined;
    const entry = { balance: Number(balance), epoch: Number(epoch) };
    if (balance === null || epoch === null || !Number.isFinite(entry.balance) || !Number.isSafeInteger(entry.epoch)) {
      throw new Error(`Ledger entry ${key} is malformed: balance ${JSON.stringify(balance)}, epoch ${JSON.stringify(epoch)}.`);
    }
    return Object.freeze(entry);
  }

  /**
   * Store an account's balance, written by the activation with `epoch`.
   * @throws StaleEpochError when a newer activation (a higher epoch) has already written.
   * @throws StoreUnavailableError when Redis did not take the write (or did not confirm it).
   */
  async save(accountId: string, balance: number, epoch: number): Promise<void> {
    if (!Number.isFinite(balance)) throw new RangeError(`Ledger: the balance of account "${accountId}" must be a finite number, got ${balance}.`);
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw new RangeError(`Ledger: the epoch must be a non-negative integer, got ${epoch}.`);
    const key = this.redis.key('ledger', accountId);
    // NOTE: String(number) is the shortest text that reads back as the same number.
    const written = await this.redis.fencedWrite(`ledger save of account "${accountId}"`, key, epoch, 'balance', String(balance));
    if (written.stale) throw new StaleEpochError(`account "${accountId}"`, epoch, written.storedEpoch);
  }
}
