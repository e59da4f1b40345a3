import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LedgerService } from '../../sample-app/accounts/ledger.service.js';
import { createTestApp } from './create-test-app.js';

/** A raw request body and its content type; `undefined` body sends none. */
interface BadBody {
  readonly name: string;
  readonly body: string | undefined;
  readonly type?: string;
  /** A fragment the 400's message must contain. */
  readonly message: string;
}

const json = (value: unknown) => JSON.stringify(value);

const BAD_AMOUNT_BODIES: readonly BadBody[] = [
  { name: 'missing amount', body: json({}), message: 'Amount is required' },
  { name: 'amount as a numeric string', body: json({ amount: '10' }), message: 'Amount must be a number, got string' },
  { name: 'amount "NaN"', body: json({ amount: 'NaN' }), message: 'Amount must be a number, got string' },
  { name: 'amount "Infinity"', body: json({ amount: 'Infinity' }), message: 'Amount must be a number, got string' },
  { name: 'amount overflowing to Infinity (1e400)', body: '{"amount":1e400}', message: 'Amount must be a finite number' },
  { name: 'negative amount', body: json({ amount: -5 }), message: 'Amount must be greater than 0' },
  { name: 'zero amount', body: json({ amount: 0 }), message: 'Amount must be greater than 0' },
  { name: 'amount below a cent', body: json({ amount: 0.001 }), message: 'at most 2 decimal places' },
  { name: 'amount too large', body: json({ amount: 1e10 }), message: 'Amount must be at most' },
  {
    name: 'amount of a billionth (1e-9: moves nothing)',
    body: json({ amount: 1e-9 }),
    message: 'Amount must be whole cents: at most 2 decimal places, got 1e-9',
  },
  { name: 'the smallest positive number (5e-324)', body: '{"amount":5e-324}', message: 'at most 2 decimal places' },
  { name: 'amount a hair above a cent (0.010000001)', body: '{"amount":0.010000001}', message: 'at most 2 decimal places' },
  { name: 'amount with three decimals (10.005)', body: '{"amount":10.005}', message: 'at most 2 decimal places' },
  { name: 'amount with float noise (0.30000000000000004)', body: '{"amount":0.30000000000000004}', message: 'at most 2 decimal places' },
  { name: 'amount a cent over the maximum', body: '{"amount":1000000000.01}', message: 'Amount must be at most 1000000000' },
  { name: 'amount null', body: json({ amount: null }), message: 'Amount must be a number, got null' },
  { name: 'amount true', body: json({ amount: true }), message: 'Amount must be a number, got boolean' },
  { name: 'amount as an array', body: json({ amount: [5] }), message: 'Amount must be a number, got an array' },
  { name: 'amount as an object', body: json({ amount: { value: 5 } }), message: 'Amount must be a number, got object' },
  { name: 'an unknown property', body: json({ amount: 5, currency: 'EUR' }), message: 'Unknown property "currency"' },
  { name: 'a JSON array body', body: json([{ amount: 5 }]), message: 'must be a JSON object' },
  { name: 'a JSON string body', body: json('5'), message: 'not valid JSON' },
  { name: 'malformed JSON', body: '{"amount": 5', message: 'JSON' },
  { name: 'no body', body: undefined, message: 'must be a JSON object' },
  { name: 'a text/plain body', body: '5', type: 'text/plain', message: 'must be a JSON object' },
  { name: 'a form body with a string amount', body: 'amount=5', type: 'application/x-www-form-urlencoded', message: 'Amount must be a number, got string' },
];

const BAD_TRANSFER_BODIES: readonly BadBody[] = [
  { name: 'missing from', body: json({ to: 'v-b', amount: 1 }), message: 'From is required' },
  { name: 'missing to', body: json({ from: 'v-a', amount: 1 }), message: 'To is required' },
  { name: 'from === to', body: json({ from: 'v-a', to: 'v-a', amount: 1 }), message: 'From and to must be different accounts' },
  { name: 'from not a string', body: json({ from: 7, to: 'v-b', amount: 1 }), message: 'From must be a string, got number' },
  { name: 'to an empty string', body: json({ from: 'v-a', to: '', amount: 1 }), message: 'To must be 1 to 64' },
  { name: 'a malformed id', body: json({ id: 'no spaces please', from: 'v-a', to: 'v-b', amount: 1 }), message: 'Id must be 1 to 64' },
  { name: 'id as a number', body: json({ id: 42, from: 'v-a', to: 'v-b', amount: 1 }), message: 'Id must be a string, got number' },
  { name: 'missing amount', body: json({ from: 'v-a', to: 'v-b' }), message: 'Amount is required' },
  { name: 'zero amount', body: json({ from: 'v-a', to: 'v-b', amount: 0 }), message: 'Amount must be greater than 0' },
  { name: 'negative amount', body: json({ from: 'v-a', to: 'v-b', amount: -1 }), message: 'Amount must be greater than 0' },
  { name: 'amount of a billionth (1e-9: moves nothing)', body: json({ from: 'v-a', to: 'v-b', amount: 1e-9 }), message: 'Amount must be whole cents' },
  { name: 'amount below a cent', body: json({ from: 'v-a', to: 'v-b', amount: 0.001 }), message: 'at most 2 decimal places' },
  { name: 'amount with three decimals (10.005)', body: '{"from":"v-a","to":"v-b","amount":10.005}', message: 'at most 2 decimal places' },
  { name: 'amount "NaN"', body: json({ from: 'v-a', to: 'v-b', amount: 'NaN' }), message: 'Amount must be a number, got string' },
  { name: 'an unknown property', body: json({ from: 'v-a', to: 'v-b', amount: 1, memo: 'x' }), message: 'Unknown property "memo"' },
  { name: 'a JSON array body', body: json([]), message: 'must be a JSON object' },
  { name: 'no body', body: undefined, message: 'must be a JSON object' },
];

describe('sample app: request validation', () => {
  let app: INestApplication;
  const send = (path: string, { body, type }: BadBody) => {
    const req = request(app.getHttpServer()).post(path);
    return body === undefined ? req : req.set('content-type', type ?? 'application/json').send(body);
  };
  const expect400 = async (res: request.Response, fragment: string) => {
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
    expect(typeof res.body.message).toBe('string');
    expect(res.body.message).toContain(fragment);
  };

  beforeAll(async () => {
    app = await createTestApp();
    await request(app.getHttpServer()).post('/accounts/v-a/deposit').send({ amount: 100 }).expect(200);
  });
  afterAll(async () => {
    await app?.close();
  });

  describe.each(['deposit', 'withdraw'])('POST /accounts/:id/%s', (operation) => {
    it.each(BAD_AMOUNT_BODIES)('400 for $name', async (bad) => {
      await expect400(await send(`/accounts/v-a/${operation}`, bad), bad.message);
    });
  });

  it('whole cents up to the maximum are accepted exactly (0.29, 0.01, 999999999.99)', async () => {
    const deposit = (amount: number) => request(app.getHttpServer()).post('/accounts/v-cents/deposit').send({ amount });
    expect((await deposit(0.29).expect(200)).body).toEqual({ id: 'v-cents', balance: 0.29 });
    expect((await deposit(0.01).expect(200)).body).toEqual({ id: 'v-cents', balance: 0.3 });
    expect((await deposit(999_999_999.99).expect(200)).body).toEqual({ id: 'v-cents', balance: 1_000_000_000.29 });
  });

  it('400 for a malformed account id', async () => {
    await expect400(await request(app.getHttpServer()).get('/accounts/has%20space').send(), 'Account id must be 1 to 64');
    await expect400(await request(app.getHttpServer()).post('/accounts/-dash-first/deposit').send({ amount: 1 }), 'Account id must be 1 to 64');
  });

  describe('POST /transfers', () => {
    it.each(BAD_TRANSFER_BODIES)('400 for $name', async (bad) => {
      await expect400(await send('/transfers', bad), bad.message);
    });
  });

  it('no rejected request moved any money', async () => {
    const res = await request(app.getHttpServer()).get('/accounts/v-a').expect(200);
    expect(res.body.balance).toBe(100);
    expect((await app.get(LedgerService).load('v-a'))?.balance).toBe(100);
    expect(await app.get(LedgerService).load('v-b')).toBeUndefined();
  });
});
