import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { LedgerService } from '../../sample-app/accounts/ledger.service.js';
import { StaleEpochError } from '../../sample-app/common/stale-epoch.error.js';
import { TransferJournalService, type TransferResult } from '../../sample-app/transfers/transfer-journal.service.js';

describe('sample app: fenced stores', () => {
  it('the ledger refuses a write with an epoch lower than the stored one', async () => {
    const ledger = new LedgerService();
    await ledger.save('a', 10, 2);
    await ledger.save('a', 20, 2); // same epoch: the same activation writing again
    const refused = ledger.save('a', 30, 1);
    await expect(refused).rejects.toBeInstanceOf(StaleEpochError);
    await expect(refused).rejects.toMatchObject({ code: 'STALE_EPOCH', epoch: 1, storedEpoch: 2 });
    expect(await ledger.load('a')).toEqual({ balance: 20, epoch: 2 });
    await ledger.save('a', 40, 3);
    expect(await ledger.load('a')).toEqual({ balance: 40, epoch: 3 });
    expect(await ledger.load('never-written')).toBeUndefined();
  });

  it('the transfer journal refuses a write with an epoch lower than the stored one', async () => {
    const journal = new TransferJournalService();
    const result: TransferResult = { id: 't', from: 'a', to: 'b', amount: 1, status: 'completed', completedAt: new Date(0).toISOString() };
    await journal.save(result, 5);
    await expect(journal.save({ ...result, amount: 2 }, 4)).rejects.toMatchObject({ code: 'STALE_EPOCH' });
    expect(await journal.load('t')).toEqual(result);
  });
});
