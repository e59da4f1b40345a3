import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from './create-test-app.js';
import { ControllableLedger } from './support/controllable-ledger.js';

describe('sample app: write-through (the ledger first, then memory)', () => {
  let app: INestApplication;
  // The real ledger, whose next save of an account can be made to fail (a database outage).
  const ledger = new ControllableLedger();
  const http = () => request(app.getHttpServer());

  beforeAll(async () => {
    app = await createTestApp({ ledger });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('a deposit whose write fails changes nothing: 500, same balance, same activation', async () => {
    await http().post('/accounts/w-1/deposit').send({ amount: 10 }).expect(200);
    const before = (await http().get('/accounts/w-1').expect(200)).body;

    ledger.failNext('save', 'w-1', new Error('ledger unavailable: disk full on db-7'));
    const res = await http().post('/accounts/w-1/deposit').send({ amount: 5 }).expect(500);
    expect(res.body).toEqual({ statusCode: 500, error: 'Internal Server Error', message: 'Internal server error' });

    expect((await http().get('/accounts/w-1').expect(200)).body).toEqual(before);
    expect((await ledger.load('w-1'))?.balance).toBe(10);
    await http().post('/accounts/w-1/deposit').send({ amount: 5 }).expect(200, { id: 'w-1', balance: 15 });
  });

  it('a withdrawal whose write fails changes nothing', async () => {
    await http().post('/accounts/w-2/deposit').send({ amount: 10 }).expect(200);
    ledger.failNext('save', 'w-2', new Error('ledger unavailable: disk full on db-7'));
    await http().post('/accounts/w-2/withdraw').send({ amount: 4 }).expect(500);
    expect((await http().get('/accounts/w-2').expect(200)).body.balance).toBe(10);
    expect((await ledger.load('w-2'))?.balance).toBe(10);
  });
});
