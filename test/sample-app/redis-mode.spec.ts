import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisIdentityLookup } from 'nestjs-grains';
import { StoreUnavailableError } from '../../sample-app/common/store-unavailable.error.js';
import { type RedisHandle, type RedisReply, startRedis } from '../support/redis-server.js';
import { createTestApp } from './create-test-app.js';
import { ControllableLedger } from './support/controllable-ledger.js';

// The bank as one in-process member in Redis mode (what IDENTITY_LOOKUP=redis configures):
// RedisIdentityLookup for placement, and the ledger and the transfer journal in the same REAL
// redis-server. Then the HTTP answers to store failures (STORE_UNAVAILABLE, STORE_OUTCOME_UNKNOWN).

function hash(reply: RedisReply): Record<string, string> {
  const flat = reply as string[];
  const out: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

async function clientNames(server: RedisHandle): Promise<string[]> {
  const list = String(await server.command('CLIENT', 'LIST'));
  return [...list.matchAll(/\bname=(\S*)/g)].map((m) => m[1]!);
}

const STORE_UNAVAILABLE_BODY = {
  statusCode: 503,
  error: 'Service Unavailable',
  message: 'The data store is not available right now; nothing was changed. Retry later.',
  code: 'STORE_UNAVAILABLE',
};
const STORE_OUTCOME_UNKNOWN_BODY = {
  statusCode: 504,
  error: 'Gateway Timeout',
  message: 'The data store did not confirm the operation; it may or may not have been applied.',
  code: 'STORE_OUTCOME_UNKNOWN',
};

describe('sample app in Redis mode: the ledger and the journal in Redis, placement by RedisIdentityLookup', () => {
  let server: RedisHandle;
  let app: INestApplication | undefined;
  const http = () => request(app!.getHttpServer());
  /** A new member process, as far as the bank can tell: new lookup, new connection. */
  const start = () =>
    createTestApp({
      bank: {
        cluster: { clusterName: 'rm', identityLookup: new RedisIdentityLookup({ url: server.url, keyPrefix: 'it' }) },
        redisStores: { url: server.url, keyPrefix: 'it' },
      },
    });
  const entryEpoch = async (name: string) => Number(await server.command('HGET', `{it:rm}:ci:${name}`, 'epoch'));

  beforeAll(async () => {
    server = await startRedis({ label: 'redis mode' });
    app = await start();
  });
  afterAll(async () => {
    await app?.close();
    await server?.stop();
  });

  it('writes every deposit through to Redis with the epoch of the activation (the lookup entry’s epoch)', async () => {
    await http().post('/accounts/alice/deposit').send({ amount: 100 }).expect(200, { id: 'alice', balance: 100 });
    await http().post('/accounts/alice/withdraw').send({ amount: 30.5 }).expect(200, { id: 'alice', balance: 69.5 });
    const epoch = await entryEpoch('account/alice');
    expect(epoch).toBeGreaterThan(0);
    expect(hash(await server.command('HGETALL', '{it:rm}:ledger:alice'))).toEqual({ balance: '69.5', epoch: String(epoch) });

    const transfer = await http().post('/transfers').send({ id: 'rt-1', from: 'alice', to: 'bob', amount: 9.5 }).expect(200);
    expect(hash(await server.command('HGETALL', '{it:rm}:ledger:alice')).balance).toBe('60');
    expect(hash(await server.command('HGETALL', '{it:rm}:ledger:bob')).balance).toBe('9.5');
    const journal = hash(await server.command('HGETALL', '{it:rm}:journal:rt-1'));
    expect(JSON.parse(journal.result!)).toEqual(transfer.body);
    expect(journal.epoch).toBe(String(await entryEpoch('transfer/rt-1')));
  });

  it('an activation raises the ledger’s epoch to its own before its first write (an account only read is fenced too)', async () => {
    expect((await http().get('/accounts/dave').expect(200)).body).toMatchObject({ id: 'dave', balance: 0 });
    expect(hash(await server.command('HGETALL', '{it:rm}:ledger:dave'))).toEqual({ epoch: String(await entryEpoch('account/dave')) });
    await http().post('/accounts/dave/deposit').send({ amount: 2 }).expect(200, { id: 'dave', balance: 2 });
    expect(hash(await server.command('HGETALL', '{it:rm}:ledger:dave'))).toEqual({ balance: '2', epoch: String(await entryEpoch('account/dave')) });
  });

  it('a member started afresh finds the balances and the recorded transfers in Redis, under a new activation and epoch', async () => {
    const before = (await http().get('/accounts/alice').expect(200)).body;
    const epochBefore = await entryEpoch('account/alice');
    const recorded = (await http().get('/transfers/rt-1').expect(200)).body;
    await app!.close();
    app = undefined;
    await expect.poll(() => clientNames(server), { timeout: 2_000, interval: 20 }).not.toContain('bank-stores'); // closed on shutdown

    app = await start();
    const after = (await http().get('/accounts/alice').expect(200)).body;
    expect(after).toMatchObject({ id: 'alice', balance: 60 });
    expect(after.activation).not.toBe(before.activation);
    expect(await entryEpoch('account/alice')).toBeGreaterThan(epochBefore);
    // The same transfer id again: the recorded result, no money moved.
    await http().post('/transfers').send({ id: 'rt-1', from: 'alice', to: 'bob', amount: 9.5 }).expect(200, recorded);
    expect((await http().get('/accounts/bob').expect(200)).body.balance).toBe(9.5);
    await http().post('/accounts/alice/deposit').send({ amount: 1 }).expect(200, { id: 'alice', balance: 61 });
    expect(hash(await server.command('HGETALL', '{it:rm}:ledger:alice'))).toEqual({ balance: '61', epoch: String(await entryEpoch('account/alice')) });
  });

  it('fenced out: once a newer activation has written, the old one’s write is refused (503 STALE_EPOCH), and the next call reloads', async () => {
    await http().post('/accounts/carol/deposit').send({ amount: 10 }).expect(200);
    const old = (await http().get('/accounts/carol').expect(200)).body;
    const epoch = await entryEpoch('account/carol');
    // What a newer activation elsewhere would have written (its claim takes the next epoch).
    await server.command('HSET', '{it:rm}:ledger:carol', 'balance', '500', 'epoch', String(epoch + 1));

    const refused = await http().post('/accounts/carol/deposit').send({ amount: 1 }).expect(503);
    expect(refused.body).toMatchObject({ code: 'STALE_EPOCH' });
    expect(hash(await server.command('HGETALL', '{it:rm}:ledger:carol'))).toEqual({ balance: '500', epoch: String(epoch + 1) });

    // The refused activation stopped; the next call claims afresh and loads what the newer one wrote.
    const now = (await http().get('/accounts/carol').expect(200)).body;
    expect(now.balance).toBe(500);
    expect(now.activation).not.toBe(old.activation);
    expect(await entryEpoch('account/carol')).toBe(epoch + 1);
    await http().post('/accounts/carol/deposit').send({ amount: 1 }).expect(200, { id: 'carol', balance: 501 });
  });
});

describe('sample app with the Redis stores: Redis failing, over HTTP', () => {
  let server: RedisHandle;
  let app: INestApplication;
  const http = () => request(app.getHttpServer());

  beforeAll(async () => {
    server = await startRedis({ label: 'failing redis' });
    // The embedded member (in-memory placement) with the Redis stores: only the stores fail here.
    app = await createTestApp({ bank: { redisStores: { url: server.url, commandTimeoutMs: 200 } } });
  });
  afterEach(async () => {
    if (server.paused) await server.resume();
    if (!server.alive) await server.restart({ keepData: true });
  });
  afterAll(async () => {
    await app?.close();
    await server?.stop();
  });

  it('Redis down → 503 STORE_UNAVAILABLE with Retry-After, nothing changes; served again once Redis is back', async () => {
    await http().post('/accounts/d1/deposit').send({ amount: 10 }).expect(200);
    await server.save();
    await server.kill();
    await expect.poll(async () => (await http().post('/accounts/d1/deposit').send({ amount: 1 })).status, { timeout: 2_000, interval: 10 }).toBe(503);

    const res = await http().post('/accounts/d1/deposit').send({ amount: 1 }).expect(503);
    expect(res.body).toEqual(STORE_UNAVAILABLE_BODY);
    expect(res.headers['retry-after']).toBe('1');
    expect((await http().get('/accounts/d1').expect(200)).body.balance).toBe(10); // the active account still answers reads
    // An account that has to load its balance first cannot activate: 503 too (not 500).
    const cold = await http().get('/accounts/d-cold').expect(503);
    expect(cold.body).toEqual(STORE_UNAVAILABLE_BODY);
    const transfer = await http().post('/transfers').send({ id: 'd-t', from: 'd1', to: 'd2', amount: 1 }).expect(503);
    expect(transfer.body.code).toBe('STORE_UNAVAILABLE');

    await server.restart({ keepData: true });
    await expect.poll(async () => (await http().post('/accounts/d1/deposit').send({ amount: 1 })).status, { timeout: 5_000, interval: 50 }).toBe(200);
    expect((await http().get('/accounts/d1').expect(200)).body.balance).toBe(11);
  });

  it('Redis hung → 504 STORE_OUTCOME_UNKNOWN; the account then reloads what Redis holds (here: the write did land)', async () => {
    await http().post('/accounts/h1/deposit').send({ amount: 10 }).expect(200);
    const before = (await http().get('/accounts/h1').expect(200)).body;
    await server.pause();
    const res = await http().post('/accounts/h1/deposit').send({ amount: 5 }).expect(504);
    expect(res.body).toEqual(STORE_OUTCOME_UNKNOWN_BODY);
    await server.resume();
    // The activation stopped (its memory said 10, Redis may say 15); the next one loads 15.
    await expect.poll(async () => (await http().get('/accounts/h1')).body, { timeout: 3_000, interval: 50 }).toMatchObject({ balance: 15 });
    expect((await http().get('/accounts/h1').expect(200)).body.activation).not.toBe(before.activation);
  });
});

describe('sample app: store errors in a transfer (the refund rule)', () => {
  let app: INestApplication;
  const ledger = new ControllableLedger();
  const http = () => request(app.getHttpServer());

  beforeAll(async () => {
    app = await createTestApp({ ledger });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('a deposit whose write was certainly not applied: the withdrawal is refunded, 503', async () => {
    await http().post('/accounts/r-from/deposit').send({ amount: 50 }).expect(200);
    ledger.failNext('save', 'r-to', new StoreUnavailableError('ledger save of account "r-to"', false, "Stream isn't writeable"));
    const res = await http().post('/transfers').send({ id: 'r-1', from: 'r-from', to: 'r-to', amount: 20 }).expect(503);
    expect(res.body.code).toBe('STORE_UNAVAILABLE');
    expect((await http().get('/accounts/r-from').expect(200)).body.balance).toBe(50);
  });

  it('a deposit whose write has an unknown outcome: no refund (it may have landed), 504; the account reloads its ledger entry', async () => {
    await http().post('/accounts/u-from/deposit').send({ amount: 50 }).expect(200);
    await http().post('/accounts/u-to/deposit').send({ amount: 1 }).expect(200);
    const before = (await http().get('/accounts/u-to').expect(200)).body;
    ledger.failNext('save', 'u-to', new StoreUnavailableError('ledger save of account "u-to"', true, 'Command timed out'));
    const res = await http().post('/transfers').send({ id: 'u-1', from: 'u-from', to: 'u-to', amount: 20 }).expect(504);
    expect(res.body).toEqual(STORE_OUTCOME_UNKNOWN_BODY);
    expect((await http().get('/accounts/u-from').expect(200)).body.balance).toBe(30); // not refunded: reconcile by hand
    const after = (await http().get('/accounts/u-to').expect(200)).body;
    expect(after.activation).not.toBe(before.activation); // deactivated after the unknown write
    expect(after.balance).toBe(1); // what the ledger holds (this fake failure applied nothing)
  });
});
