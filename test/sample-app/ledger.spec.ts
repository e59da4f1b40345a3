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

  it('loadAndFence raises the stored epoch to the loader’s, and refuses a loader older than the stored epoch', async () => {
    const ledger = new LedgerService();
    expect(await ledger.loadAndFence('a', 3)).toBe(0); // never written: balance 0, fenced at 3
    expect(await ledger.load('a')).toEqual({ balance: 0, epoch: 3 });
    await expect(ledger.save('a', 10, 2)).rejects.toMatchObject({ code: 'STALE_EPOCH', epoch: 2, storedEpoch: 3 });
    await ledger.save('a', 10, 3);
    expect(await ledger.loadAndFence('a', 3)).toBe(10); // the same activation again
    expect(await ledger.loadAndFence('a', 5)).toBe(10);
    expect(await ledger.load('a')).toEqual({ balance: 10, epoch: 5 }); // the balance is kept, the fence raised
    const refused = ledger.loadAndFence('a', 4);
    await expect(refused).rejects.toBeInstanceOf(StaleEpochError);
    await expect(refused).rejects.toMatchObject({ code: 'STALE_EPOCH', epoch: 4, storedEpoch: 5, operation: 'load' });
    await expect(refused).rejects.toThrow('Load of account "a" refused: epoch 4 is older than the stored epoch 5; a newer activation owns it.');
    expect(await ledger.load('a')).toEqual({ balance: 10, epoch: 5 });
  });

  it('the transfer journal refuses a write with an epoch lower than the stored one', async () => {
    const journal = new TransferJournalService();
    const result: TransferResult = { id: 't', from: 'a', to: 'b', amount: 1, status: 'completed', completedAt: new Date(0).toISOString() };
    await journal.save(result, 5);
    await expect(journal.save({ ...result, amount: 2 }, 4)).rejects.toMatchObject({ code: 'STALE_EPOCH' });
    expect(await journal.load('t')).toEqual(result);
  });
});
