import { Injectable } from '@nestjs/common';
import { StaleEpochError } from '../common/stale-epoch.error.js';
import { BankRedis } from '../redis/bank-redis.js';
import type { TransferJournalService, TransferResult } from './transfer-journal.service.js';

/**
 * The transfer journal in Redis (with `IDENTITY_LOOKUP=redis`): the same methods and fencing
 * as the in-memory `TransferJournalService`, provided under its token. A transfer id moves
 * money once cluster-wide, even when its grain is activated again on another member.
 *
 * One hash per transfer, `{keyPrefix:cluster}:journal:<transfer id>` = `{ result (JSON), epoch }`,
 * written by the same fenced script as the ledger (`BankRedis.fencedWrite`).
 */
@Injectable()
export class RedisTransferJournal implements Pick<TransferJournalService, 'load' | 'save'> {
  constructor(private readonly redis: BankRedis) {}

  /** The recorded result of a transfer, or undefined when it never completed. */
  async load(transferId: string): Promise<TransferResult | undefined> {
    const key = this.redis.key('journal', transferId);
    const [text] = await this.redis.read(`journal load of transfer "${transferId}"`, key, ['result']);
    if (text === null || text === undefined) return undefined;
    const result = parseResult(text);
    if (result === undefined || result.id !== transferId) throw new Error(`Journal entry ${key} is malformed: ${text.slice(0, 200)}`);
    return Object.freeze(result);
  }

  /**
   * Record a completed transfer, written by the activation with `epoch`.
   * @throws StaleEpochError when a newer activation (a higher epoch) has already written.
   * @throws StoreUnavailableError when Redis did not take the write (or did not confirm it).
   */
  async save(result: TransferResult, epoch: number): Promise<void> {
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw new RangeError(`Journal: the epoch must be a non-negative integer, got ${epoch}.`);
    const { id, from, to, amount, status, completedAt } = result;
    const text = JSON.stringify({ id, from, to, amount, status, completedAt });
    const written = await this.redis.fencedWrite(`journal save of transfer "${id}"`, this.redis.key('journal', id), epoch, 'result', text);
    if (written.stale) throw new StaleEpochError(`transfer "${id}"`, epoch, written.storedEpoch);
  }
}

/** A recorded `TransferResult`, or undefined when `text` is not one. */
function parseResult(text: string): TransferResult | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { id, from, to, amount, status, completedAt } = value as Record<string, unknown>;
  if (
    typeof id !== 'string' ||
    typeof from !== 'string' ||
    typeof to !== 'string' ||
    typeof amount !== 'number' ||
    status !== 'completed' ||
    typeof completedAt !== 'string'
  )
    return undefined;
  return { id, from, to, amount, status, completedAt };
}
