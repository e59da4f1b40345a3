import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LedgerService } from '../../sample-app/accounts/ledger.service.js';
import { createTestApp } from './create-test-app.js';

// The ledger yields to the event loop between every read and write (simulated I/O), so these
// only pass because the runtime runs one call at a time per account.
describe('sample app: concurrency (turn-based execution + write-through)', () => {
  let app: INestApplication;
  const http = () => request(app.getHttpServer());

  beforeAll(async () => {
    app = await createTestApp();
  });
  afterAll(async () => {
    await app?.close();
  });

  it('200 parallel deposits of 1 to one account end at exactly 200', async () => {
    const responses = await Promise.all(Array.from({ length: 200 }, () => http().post('/accounts/hot/deposit').send({ amount: 1 })));
    expect(responses.map((r) => r.status).every((s) => s === 200)).toBe(true);
    // Each deposit saw the one before it: the balances answered are exactly 1..200.
    expect(responses.map((r) => r.body.balance as number).sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect((await http().get('/accounts/hot').expect(200)).body.balance).toBe(200);
    expect((await app.get(LedgerService).load('hot'))?.balance).toBe(200);
  });

  it('100 parallel withdrawals of 1 from a balance of 50: exactly 50 succeed, the rest get 409', async () => {
    await http().post('/accounts/drain/deposit').send({ amount: 50 }).expect(200);
    const responses = await Promise.all(Array.from({ length: 100 }, () => http().post('/accounts/drain/withdraw').send({ amount: 1 })));
    expect(responses.filter((r) => r.status === 200)).toHaveLength(50);
    const refused = responses.filter((r) => r.status === 409);
    expect(refused).toHaveLength(50);
    expect(refused.every((r) => r.body.code === 'INSUFFICIENT_FUNDS')).toBe(true);
    expect((await http().get('/accounts/drain').expect(200)).body.balance).toBe(0);
    expect((await app.get(LedgerService).load('drain'))?.balance).toBe(0);
  });

  it('parallel transfers both ways between two accounts conserve the total', async () => {
    // 30 × 3 out of ring-a never exceeds its 100, whatever the order: every transfer succeeds.
    await http().post('/accounts/ring-a/deposit').send({ amount: 100 }).expect(200);
    await http().post('/accounts/ring-b/deposit').send({ amount: 100 }).expect(200);
    const responses = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        http()
          .post('/transfers')
          .send(i % 2 === 0 ? { from: 'ring-a', to: 'ring-b', amount: 3 } : { from: 'ring-b', to: 'ring-a', amount: 2 }),
      ),
    );
    expect(responses.every((r) => r.status === 200)).toBe(true);
    const a = (await http().get('/accounts/ring-a').expect(200)).body.balance as number;
    const b = (await http().get('/accounts/ring-b').expect(200)).body.balance as number;
    expect(a).toBe(100 - 30 * 3 + 30 * 2);
    expect(a + b).toBe(200);
  });
});
