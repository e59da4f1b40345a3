import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getGrainClientToken, type GrainClient, GrainInvocationError } from 'nestjs-grains';
import type { AccountGrain } from '../../sample-app/accounts/account.grain.js';
import type { TransferGrain } from '../../sample-app/transfers/transfer.grain.js';
import { createTestApp } from './create-test-app.js';

// The grains are callable by any code in the cluster, not only through the HTTP pipes, so
// they check their arguments themselves.
describe('sample app: grains validate their own arguments', () => {
  let app: INestApplication;
  let accounts: GrainClient<AccountGrain>;
  let transfers: GrainClient<TransferGrain>;

  beforeAll(async () => {
    app = await createTestApp();
    accounts = app.get(getGrainClientToken('account'));
    transfers = app.get(getGrainClientToken('transfer'));
    await accounts.get('g-a').deposit(100);
  });
  afterAll(async () => {
    await app?.close();
  });

  it.each([
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-1', -1],
    ['0', 0],
    ['0.001', 0.001],
    ['1e-9 (would move nothing)', 1e-9],
    ['0.30000000000000004', 0.1 + 0.2],
    ['the string "5"', '5'],
    ['undefined', undefined],
  ])('deposit and withdraw refuse %s with INVALID_AMOUNT', async (_name, amount) => {
    for (const call of [() => accounts.get('g-a').deposit(amount as number), () => accounts.get('g-a').withdraw(amount as number)]) {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(GrainInvocationError);
      expect(error).toMatchObject({ remoteCode: 'INVALID_AMOUNT', remoteName: 'InvalidAmountError' });
    }
    expect((await accounts.get('g-a').balance()).balance).toBe(100);
  });

  it('withdraw beyond the balance throws InsufficientFundsError', async () => {
    await expect(accounts.get('g-a').withdraw(100.01)).rejects.toMatchObject({ remoteCode: 'INSUFFICIENT_FUNDS', remoteName: 'InsufficientFundsError' });
  });

  it.each([
    ['from === to', 'g-a', 'g-a', 1, 'INVALID_TRANSFER'],
    ['an empty from', '', 'g-b', 1, 'INVALID_TRANSFER'],
    ['a non-string to', 'g-a', 42, 1, 'INVALID_TRANSFER'],
    ['a negative amount', 'g-a', 'g-b', -1, 'INVALID_AMOUNT'],
    ['a NaN amount', 'g-a', 'g-b', Number.NaN, 'INVALID_AMOUNT'],
    ['a 1e-9 amount', 'g-a', 'g-b', 1e-9, 'INVALID_AMOUNT'],
  ])('transfer execute refuses %s', async (_name, from, to, amount, code) => {
    await expect(transfers.get(`g-bad-${String(_name).replace(/\W+/g, '-')}`).execute(from as string, to as string, amount)).rejects.toMatchObject({
      remoteCode: code,
    });
    expect((await accounts.get('g-a').balance()).balance).toBe(100);
  });

  it('a transfer is a grain calling two account grains', async () => {
    const result = await transfers.get('g-t1').execute('g-a', 'g-b', 40);
    expect(result).toMatchObject({ id: 'g-t1', from: 'g-a', to: 'g-b', amount: 40, status: 'completed' });
    expect(await transfers.get('g-t1').status()).toEqual(result);
    expect(await transfers.get('g-never').status()).toEqual({ id: 'g-never', status: 'unknown' });
    expect((await accounts.get('g-a').balance()).balance).toBe(60);
    expect((await accounts.get('g-b').balance()).balance).toBe(40);
  });
});
