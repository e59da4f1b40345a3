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
 * One hash per account, `{keyPrefix:cluster}:ledger:<account id>` = `{ balance, epoch }`. An
 * activation loads it with one atomic script that raises `epoch` to its own (`loadAndFence`;
 * an account only read holds `{ epoch }` alone), and writes through on every change with
 * another that refuses an epoch lower than the stored one (`StaleEpochError`). With the Redis
 * identity lookup `ctx.epoch` grows with every activation of an account in the whole cluster,
 * so it is a fencing token across members: once a newer activation has loaded the account, a
 * stale one (a member that lost its lease but has not noticed yet) can no longer write it.
 *
 * Failures are `StoreUnavailableError` (see `BankRedis` for the connection policy).
 */
@Injectable()
export class RedisLedgerService implements Pick<LedgerService, 'load' | 'loadAndFence' | 'save'> {
  constructor(private readonly redis: BankRedis) {}

  /**
   * The stored entry of an account, or undefined for an account never loaded or written. A
   * plain read, which fences nothing (for tests and tools): an activation uses `loadAndFence`.
   */
  async load(accountId: string): Promise<LedgerEntry | undefined> {
    const key = this.redis.key('ledger', accountId);
    const [balance, epoch] = await this.redis.read(`ledger load of account "${accountId}"`, key, ['balance', 'epoch']);
    if (balance === null && epoch === null) return undefined;
    if (epoch === null || !Number.isSafeInteger(Number(epoch))) throw malformed(key, balance, epoch);
    return Object.freeze({ balance: parseBalance(key, balance, epoch), epoch: Number(epoch) });
  }

  /**
   * Load an account's balance for the activation with `epoch` (0 for an account never
   * written), raising the stored epoch to `epoch` in the same atomic step
   * (`BankRedis.fencedLoad`): from then on a write from an older activation is refused, even
   * before this activation's first write.
   * @throws StaleEpochError when a newer activation (a higher epoch) has already loaded or written.
   * @throws StoreUnavailableError when Redis did not answer.
   */
  async loadAndFence(accountId: string, epoch: number): Promise<number> {
    assertEpoch(epoch);
    const key = this.redis.key('ledger', accountId);
    const loaded = await this.redis.fencedLoad(`ledger load of account "${accountId}"`, key, epoch, ['balance']);
    if (loaded.stale) throw new StaleEpochError(`account "${accountId}"`, epoch, loaded.storedEpoch, 'load');
    return parseBalance(key, loaded.values[0] ?? null, String(epoch));
  }

  /**
   * Store an account's balance, written by the activation with `epoch`.
   * @throws StaleEpochError when a newer activation (a higher epoch) has already loaded or written.
   * @throws StoreUnavailableError when Redis did not take the write (or did not confirm it).
   */
  async save(accountId: string, balance: number, epoch: number): Promise<void> {
    if (!Number.isFinite(balance)) throw new RangeError(`Ledger: the balance of account "${accountId}" must be a finite number, got ${balance}.`);
    assertEpoch(epoch);
    const key = this.redis.key('ledger', accountId);
    // NOTE: String(number) is the shortest text that reads back as the same number.
    const written = await this.redis.fencedWrite(`ledger save of account "${accountId}"`, key, epoch, 'balance', String(balance));
    if (written.stale) throw new StaleEpochError(`account "${accountId}"`, epoch, written.storedEpoch);
  }
}

function assertEpoch(epoch: number): void {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new RangeError(`Ledger: the epoch must be a non-negative integer, got ${epoch}.`);
}

/** A stored balance as a number: 0 when absent (an account loaded but never written). */
function parseBalance(key: string, balance: string | null, epoch: string | null): number {
  if (balance === null) return 0;
  const value = Number(balance);
  if (!Number.isFinite(value)) throw malformed(key, balance, epoch);
  return value;
}

function malformed(key: string, balance: string | null, epoch: string | null): Error {
  return new Error(`Ledger entry ${key} is malformed: balance ${JSON.stringify(balance)}, epoch ${JSON.stringify(epoch)}.`);
}
