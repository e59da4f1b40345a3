import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransferJournalService, type TransferResult } from '../../sample-app/transfers/transfer-journal.service.js';
import { createTestApp } from './create-test-app.js';

describe('sample app: transfers (grain-to-grain)', () => {
  let app: INestApplication;
  const http = () => request(app.getHttpServer());
  const fund = (id: string, amount: number) => http().post(`/accounts/${id}/deposit`).send({ amount }).expect(200);
  const balanceOf = async (id: string) => (await http().get(`/accounts/${id}`).expect(200)).body.balance as number;
  const transfer = (body: Record<string, unknown>) => http().post('/transfers').send(body);

  beforeAll(async () => {
    app = await createTestApp();
  });
  afterAll(async () => {
    await app?.close();
  });

  it('moves money from one account to another', async () => {
    await fund('t-alice', 100);
    const res = await transfer({ id: 'tr-1', from: 't-alice', to: 't-bob', amount: 30 }).expect(200);
    expect(res.body).toEqual({ id: 'tr-1', from: 't-alice', to: 't-bob', amount: 30, status: 'completed', completedAt: expect.any(String) });
    expect(Number.isNaN(Date.parse(res.body.completedAt))).toBe(false);
    expect(await balanceOf('t-alice')).toBe(70);
    expect(await balanceOf('t-bob')).toBe(30);
  });

  it('generates a transfer id when none is given', async () => {
    await fund('t-gen-a', 10);
    const res = await transfer({ from: 't-gen-a', to: 't-gen-b', amount: 4 }).expect(200);
    expect(res.body.id).toMatch(/^[0-9a-f-]{36}$/);
    await http().get(`/transfers/${res.body.id}`).expect(200, res.body);
    expect(await balanceOf('t-gen-b')).toBe(4);
  });

  it('is not applied twice when repeated with the same id, and answers the recorded result', async () => {
    await fund('t-rep-a', 100);
    const body = { id: 'tr-repeat', from: 't-rep-a', to: 't-rep-b', amount: 25 };
    const first = await transfer(body).expect(200);
    const second = await transfer(body).expect(200);
    expect(second.body).toEqual(first.body);
    expect(await balanceOf('t-rep-a')).toBe(75);
    expect(await balanceOf('t-rep-b')).toBe(25);
    await http().get('/transfers/tr-repeat').expect(200, first.body);
  });

  it('is applied once when the same id arrives many times concurrently', async () => {
    await fund('t-conc-a', 100);
    const body = { id: 'tr-concurrent', from: 't-conc-a', to: 't-conc-b', amount: 10 };
    const responses = await Promise.all(Array.from({ length: 20 }, () => transfer(body)));
    for (const res of responses) {
      expect(res.status).toBe(200);
      expect(res.body).toEqual(responses[0]!.body);
    }
    expect(await balanceOf('t-conc-a')).toBe(90);
    expect(await balanceOf('t-conc-b')).toBe(10);
  });

  it('a transfer already in the journal is not applied again when its grain activates (state is loaded)', async () => {
    const recorded: TransferResult = {
      id: 'tr-recorded',
      from: 't-rec-a',
      to: 't-rec-b',
      amount: 5,
      status: 'completed',
      completedAt: '2020-01-01T00:00:00.000Z',
    };
    await app.get(TransferJournalService).save(recorded, 0);
    await fund('t-rec-a', 10);
    await transfer({ id: 'tr-recorded', from: 't-rec-a', to: 't-rec-b', amount: 5 }).expect(200, recorded);
    expect(await balanceOf('t-rec-a')).toBe(10);
    expect(await balanceOf('t-rec-b')).toBe(0);
  });

  it('refuses to reuse a completed transfer id for another transfer (409 TRANSFER_ID_REUSED)', async () => {
    await fund('t-reuse-a', 100);
    await transfer({ id: 'tr-reuse', from: 't-reuse-a', to: 't-reuse-b', amount: 10 }).expect(200);
    const res = await transfer({ id: 'tr-reuse', from: 't-reuse-a', to: 't-reuse-b', amount: 11 }).expect(409);
    expect(res.body).toMatchObject({ statusCode: 409, error: 'Conflict', code: 'TRANSFER_ID_REUSED' });
    expect(await balanceOf('t-reuse-a')).toBe(90);
    expect(await balanceOf('t-reuse-b')).toBe(10);
  });

  it('a transfer that would overdraft answers 409 INSUFFICIENT_FUNDS and leaves both balances unchanged', async () => {
    await fund('t-poor', 20);
    await fund('t-rich', 500);
    const res = await transfer({ id: 'tr-overdraft', from: 't-poor', to: 't-rich', amount: 20.5 }).expect(409);
    expect(res.body).toEqual({
      statusCode: 409,
      error: 'Conflict',
      message: 'Account "t-poor" has insufficient funds: balance 20, requested 20.5.',
      code: 'INSUFFICIENT_FUNDS',
    });
    expect(await balanceOf('t-poor')).toBe(20);
    expect(await balanceOf('t-rich')).toBe(500);
    // Nothing was recorded: the id is free to succeed once the funds are there.
    await http().get('/transfers/tr-overdraft').expect(404);
    await fund('t-poor', 1);
    await transfer({ id: 'tr-overdraft', from: 't-poor', to: 't-rich', amount: 20.5 }).expect(200);
    expect(await balanceOf('t-poor')).toBe(0.5);
    expect(await balanceOf('t-rich')).toBe(520.5);
  });

  it('GET /transfers/:id is 404 for a transfer that never ran', async () => {
    const res = await http().get('/transfers/never-ran').expect(404);
    expect(res.body).toMatchObject({ statusCode: 404, message: 'Transfer "never-ran" has not completed.' });
  });
});
