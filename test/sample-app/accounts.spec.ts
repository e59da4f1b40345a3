import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LedgerService } from '../../sample-app/accounts/ledger.service.js';
import { createTestApp } from './create-test-app.js';

describe('sample app: accounts', () => {
  let app: INestApplication;
  const http = () => request(app.getHttpServer());
  const deposit = (id: string, amount: unknown) => http().post(`/accounts/${id}/deposit`).send({ amount });
  const withdraw = (id: string, amount: unknown) => http().post(`/accounts/${id}/withdraw`).send({ amount });
  const balanceOf = async (id: string) => (await http().get(`/accounts/${id}`).expect(200)).body.balance as number;

  beforeAll(async () => {
    app = await createTestApp();
  });
  afterAll(async () => {
    await app?.close();
  });

  it('accumulates deposits', async () => {
    await deposit('acc-deposit', 100).expect(200, { id: 'acc-deposit', balance: 100 });
    await deposit('acc-deposit', 50).expect(200, { id: 'acc-deposit', balance: 150 });
    await deposit('acc-deposit', 0.25).expect(200, { id: 'acc-deposit', balance: 150.25 });
    expect(await balanceOf('acc-deposit')).toBe(150.25);
  });

  it('adds cents exactly (0.1 + 0.2 = 0.3)', async () => {
    await deposit('acc-cents', 0.1).expect(200);
    await deposit('acc-cents', 0.2).expect(200, { id: 'acc-cents', balance: 0.3 });
  });

  it('withdraws', async () => {
    await deposit('acc-withdraw', 100).expect(200);
    await withdraw('acc-withdraw', 30).expect(200, { id: 'acc-withdraw', balance: 70 });
    await withdraw('acc-withdraw', 70).expect(200, { id: 'acc-withdraw', balance: 0 });
    expect(await balanceOf('acc-withdraw')).toBe(0);
  });

  it('refuses an overdraft with 409 INSUFFICIENT_FUNDS and leaves the balance unchanged', async () => {
    await deposit('acc-overdraft', 40).expect(200);
    const res = await withdraw('acc-overdraft', 40.01).expect(409);
    expect(res.body).toEqual({
      statusCode: 409,
      error: 'Conflict',
      message: 'Account "acc-overdraft" has insufficient funds: balance 40, requested 40.01.',
      code: 'INSUFFICIENT_FUNDS',
    });
    expect(await balanceOf('acc-overdraft')).toBe(40);
    expect((await app.get(LedgerService).load('acc-overdraft'))?.balance).toBe(40);
  });

  it('refuses to withdraw from an account never credited', async () => {
    const res = await withdraw('acc-empty', 1).expect(409);
    expect(res.body.code).toBe('INSUFFICIENT_FUNDS');
    expect(await balanceOf('acc-empty')).toBe(0);
  });

  it('answers GET with member and activation; the activation stays across calls', async () => {
    await deposit('acc-get', 5).expect(200);
    const first = (await http().get('/accounts/acc-get').expect(200)).body;
    const members = (await http().get('/cluster/members').expect(200)).body;
    expect(first).toEqual({ id: 'acc-get', balance: 5, member: members.memberId, activation: expect.any(String) });
    expect(first.activation).toMatch(/\S/);
    await deposit('acc-get', 5).expect(200);
    const second = (await http().get('/accounts/acc-get').expect(200)).body;
    expect(second).toEqual({ ...first, balance: 10 });
    const other = (await http().get('/accounts/acc-get-other').expect(200)).body;
    expect(other.activation).not.toBe(first.activation);
  });

  it('writes every change through to the ledger with the activation epoch', async () => {
    await deposit('acc-ledger', 12).expect(200);
    await withdraw('acc-ledger', 2).expect(200);
    const stored = await app.get(LedgerService).load('acc-ledger');
    expect(stored).toEqual({ balance: 10, epoch: expect.any(Number) });
    expect(stored!.epoch).toBeGreaterThan(0); // the activation's epoch, not a default
  });

  it('loads the balance from the ledger when the account activates', async () => {
    await app.get(LedgerService).save('acc-seeded', 500, 0);
    expect(await balanceOf('acc-seeded')).toBe(500);
    await deposit('acc-seeded', 1).expect(200, { id: 'acc-seeded', balance: 501 });
  });

  it('an activation raises the ledger’s epoch to its own before its first write', async () => {
    expect(await balanceOf('acc-read')).toBe(0);
    const fenced = await app.get(LedgerService).load('acc-read');
    expect(fenced).toEqual({ balance: 0, epoch: expect.any(Number) });
    expect(fenced!.epoch).toBeGreaterThan(0); // the activation's epoch: an older activation can no longer write
    await deposit('acc-read', 3).expect(200);
    expect(await app.get(LedgerService).load('acc-read')).toEqual({ balance: 3, epoch: fenced!.epoch });
  });

  it('a fenced-out activation changes nothing, answers 503 STALE_EPOCH and is replaced', async () => {
    const before = (await http().get('/accounts/acc-fenced').expect(200)).body;
    const { epoch } = (await app.get(LedgerService).load('acc-fenced'))!;
    // Since then a newer activation (say on another member) loaded the account and wrote.
    await app.get(LedgerService).save('acc-fenced', 500, epoch + 1);

    const res = await deposit('acc-fenced', 1).expect(503);
    expect(res.body).toMatchObject({ statusCode: 503, error: 'Service Unavailable', code: 'STALE_EPOCH' });
    expect(res.headers['retry-after']).toBe('1');
    expect(await app.get(LedgerService).load('acc-fenced')).toEqual({ balance: 500, epoch: epoch + 1 });

    // The zombie deactivated itself: the next call gets a fresh activation (a higher epoch on
    // this member: one counter for every activation), reloaded from the ledger.
    const after = (await http().get('/accounts/acc-fenced').expect(200)).body;
    expect(after.activation).not.toBe(before.activation);
    expect(after.balance).toBe(500);
  });

  it('an activation older than the ledger’s epoch is not kept: 503 STALE_EPOCH, nothing changed', async () => {
    // A newer activation (epoch far ahead, say on another member) has loaded the account.
    await app.get(LedgerService).save('acc-ahead', 500, 1_000_000);
    for (const res of [await deposit('acc-ahead', 1).expect(503), await http().get('/accounts/acc-ahead').expect(503)]) {
      expect(res.body).toEqual({
        statusCode: 503,
        error: 'Service Unavailable',
        message: 'The account moved while the request ran; nothing was changed. Retry.',
        code: 'STALE_EPOCH',
      });
      expect(res.headers['retry-after']).toBe('1');
    }
    expect(await app.get(LedgerService).load('acc-ahead')).toEqual({ balance: 500, epoch: 1_000_000 });
  });
});
