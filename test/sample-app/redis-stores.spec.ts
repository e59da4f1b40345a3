import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisLedgerService } from '../../sample-app/accounts/redis-ledger.service.js';
import { StaleEpochError } from '../../sample-app/common/stale-epoch.error.js';
import { StoreUnavailableError } from '../../sample-app/common/store-unavailable.error.js';
import { BankRedis, type BankRedisOptions, RedisConnectError } from '../../sample-app/redis/bank-redis.js';
import { RedisTransferJournal } from '../../sample-app/transfers/redis-transfer-journal.service.js';
import type { TransferResult } from '../../sample-app/transfers/transfer-journal.service.js';
import { freePort } from '../support/free-port.js';
import { type RedisHandle, type RedisReply, startRedis } from '../support/redis-server.js';

// The Redis-backed ledger and transfer journal against a REAL redis-server
// (test/support/redis-server.ts): the key schema, write-through, fencing by epoch (atomic, in
// one script), and what callers get when Redis is down, hung or back.

/** A hash reply (flat [field, value, ...]) as an object. */
function hash(reply: RedisReply): Record<string, string> {
  const flat = reply as string[];
  const out: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

/** A connected BankRedis; stop it with `onApplicationShutdown()`. */
async function connect(options: BankRedisOptions): Promise<BankRedis> {
  const redis = new BankRedis(options);
  await redis.onModuleInit();
  return redis;
}

/** The names of the clients connected to `server`. */
async function clientNames(server: RedisHandle): Promise<string[]> {
  const list = String(await server.command('CLIENT', 'LIST'));
  return [...list.matchAll(/\bname=(\S*)/g)].map((m) => m[1]!);
}

const result = (id: string, amount = 1): TransferResult => ({ id, from: 'a', to: 'b', amount, status: 'completed', completedAt: new Date(0).toISOString() });

describe('sample app: RedisLedgerService and RedisTransferJournal (real redis-server)', () => {
  let server: RedisHandle;
  let redis: BankRedis;
  let ledger: RedisLedgerService;
  let journal: RedisTransferJournal;

  beforeAll(async () => {
    server = await startRedis({ label: 'bank stores' });
    redis = await connect({ url: server.url, keyPrefix: 'unit', clusterName: 'bank' });
    ledger = new RedisLedgerService(redis);
    journal = new RedisTransferJournal(redis);
  });
  afterAll(async () => {
    await redis?.onApplicationShutdown();
    await server?.stop();
  });

  it('writes through to one hash per account, {prefix:cluster}:ledger:<id> = { balance, epoch }, and reads it back', async () => {
    expect(await ledger.load('alice')).toBeUndefined();
    await ledger.save('alice', 100, 3);
    expect(hash(await server.command('HGETALL', '{unit:bank}:ledger:alice'))).toEqual({ balance: '100', epoch: '3' });
    expect(await ledger.load('alice')).toEqual({ balance: 100, epoch: 3 });
    expect(Object.isFrozen(await ledger.load('alice'))).toBe(true);
    expect(await server.command('PTTL', '{unit:bank}:ledger:alice')).toBe(-1); // never expires
  });

  it('keeps amounts exactly (cents, large balances, zero)', async () => {
    for (const balance of [0.3, 1234.56, 0.01, 1_000_000_000_000, 0]) {
      await ledger.save('exact', balance, 1);
      expect((await ledger.load('exact'))?.balance).toBe(balance);
    }
  });

  it('fencing: refuses a write whose epoch is lower than the stored one (StaleEpochError), and changes nothing', async () => {
    await ledger.save('f', 10, 2);
    await ledger.save('f', 20, 2); // the same epoch: the same activation writing again
    const refused = ledger.save('f', 30, 1);
    await expect(refused).rejects.toBeInstanceOf(StaleEpochError);
    await expect(refused).rejects.toMatchObject({ code: 'STALE_EPOCH', epoch: 1, storedEpoch: 2, target: 'account "f"' });
    expect(await ledger.load('f')).toEqual({ balance: 20, epoch: 2 });
    await ledger.save('f', 40, 3); // a newer activation
    expect(await ledger.load('f')).toEqual({ balance: 40, epoch: 3 });
    await expect(ledger.save('f', 50, 2)).rejects.toMatchObject({ code: 'STALE_EPOCH', epoch: 2, storedEpoch: 3 });
    expect(hash(await server.command('HGETALL', '{unit:bank}:ledger:f'))).toEqual({ balance: '40', epoch: '3' });
  });

  it('fencing is atomic: of 60 writes racing with epochs 1..60, none lands after epoch 60 and the highest always wins', async () => {
    const epochs = Array.from({ length: 60 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
    const outcomes = await Promise.allSettled(epochs.map((epoch) => ledger.save('race', epoch * 10, epoch)));
    expect(outcomes[epochs.indexOf(60)]!.status).toBe('fulfilled');
    for (const outcome of outcomes) if (outcome.status === 'rejected') expect(outcome.reason).toBeInstanceOf(StaleEpochError);
    expect(await ledger.load('race')).toEqual({ balance: 600, epoch: 60 });
  });

  it('epochs compare as numbers, not as strings', async () => {
    await ledger.save('numeric', 1, 9);
    await ledger.save('numeric', 2, 10); // "10" < "9" as strings; 10 > 9 as numbers
    await expect(ledger.save('numeric', 3, 9)).rejects.toBeInstanceOf(StaleEpochError);
    expect(await ledger.load('numeric')).toEqual({ balance: 2, epoch: 10 });
  });

  it('loadAndFence: one atomic script raises the stored epoch to the loader’s and reads the balance, or refuses an older loader', async () => {
    expect(await ledger.loadAndFence('lf', 4)).toBe(0); // never written: balance 0, and fenced
    expect(hash(await server.command('HGETALL', '{unit:bank}:ledger:lf'))).toEqual({ epoch: '4' });
    expect(await ledger.load('lf')).toEqual({ balance: 0, epoch: 4 });
    await expect(ledger.save('lf', 9, 3)).rejects.toMatchObject({ code: 'STALE_EPOCH', epoch: 3, storedEpoch: 4 });
    await ledger.save('lf', 12.5, 4);
    expect(await ledger.loadAndFence('lf', 4)).toBe(12.5); // the same activation again
    expect(await ledger.loadAndFence('lf', 10)).toBe(12.5); // "10" < "4" as strings; a number here
    expect(hash(await server.command('HGETALL', '{unit:bank}:ledger:lf'))).toEqual({ balance: '12.5', epoch: '10' });
    const refused = ledger.loadAndFence('lf', 9);
    await expect(refused).rejects.toBeInstanceOf(StaleEpochError);
    await expect(refused).rejects.toMatchObject({ code: 'STALE_EPOCH', epoch: 9, storedEpoch: 10, operation: 'load', target: 'account "lf"' });
    await expect(ledger.save('lf', 1, 9)).rejects.toMatchObject({ code: 'STALE_EPOCH', storedEpoch: 10 });
    expect(hash(await server.command('HGETALL', '{unit:bank}:ledger:lf'))).toEqual({ balance: '12.5', epoch: '10' });
  });

  it('loadAndFence is atomic: of stale writes racing it from another connection, none lands after it', async () => {
    // The stale activation's member has its own connection; its writes are applied in order.
    const elsewhere = await connect({ url: server.url, keyPrefix: 'unit', clusterName: 'bank' });
    try {
      await ledger.save('lf-race', 1, 1);
      const stale = new RedisLedgerService(elsewhere);
      const writes = Array.from({ length: 30 }, (_, i) => stale.save('lf-race', 100 + i, 1));
      // NOTE: settled before the await below: a write refused before the fence's own reply comes
      // must already have a handler (else it is an unhandled rejection while the test waits).
      const settled = Promise.allSettled(writes);
      const balance = await ledger.loadAndFence('lf-race', 2);
      const outcomes = await settled;
      // The writes before the load are what it read; every one after it was refused.
      const accepted = outcomes.filter((outcome) => outcome.status === 'fulfilled').length;
      expect(outcomes.slice(accepted).every((outcome) => outcome.status === 'rejected' && outcome.reason instanceof StaleEpochError)).toBe(true);
      expect(balance).toBe(accepted === 0 ? 1 : 100 + accepted - 1);
      expect(await ledger.load('lf-race')).toEqual({ balance, epoch: 2 });
    } finally {
      await elsewhere.onApplicationShutdown();
    }
  });

  it('loadAndFence works after Redis lost its scripts (NOSCRIPT: sent again whole)', async () => {
    await server.command('SCRIPT', 'FLUSH');
    expect(await ledger.loadAndFence('lf-noscript', 1)).toBe(0);
    await server.command('SCRIPT', 'FLUSH');
    await ledger.save('lf-noscript', 2, 1);
    expect(await ledger.load('lf-noscript')).toEqual({ balance: 2, epoch: 1 });
  });

  it('refuses a balance or epoch that is not a number it can store, before writing', async () => {
    await expect(ledger.save('bad', Number.NaN, 1)).rejects.toBeInstanceOf(RangeError);
    await expect(ledger.save('bad', 1, 1.5)).rejects.toBeInstanceOf(RangeError);
    await expect(ledger.save('bad', 1, -1)).rejects.toBeInstanceOf(RangeError);
    await expect(ledger.loadAndFence('bad', 1.5)).rejects.toBeInstanceOf(RangeError);
    expect(await server.command('EXISTS', '{unit:bank}:ledger:bad')).toBe(0);
  });

  it('a malformed entry is an error, not a balance of NaN', async () => {
    await server.command('HSET', '{unit:bank}:ledger:broken', 'balance', 'lots', 'epoch', '1');
    await expect(ledger.load('broken')).rejects.toThrow(/Ledger entry \{unit:bank\}:ledger:broken is malformed/);
    await expect(ledger.loadAndFence('broken', 2)).rejects.toThrow(/Ledger entry \{unit:bank\}:ledger:broken is malformed/);
  });

  it('the journal: one hash per transfer, {prefix:cluster}:journal:<id> = { result (JSON), epoch }, fenced the same way', async () => {
    expect(await journal.load('t1')).toBeUndefined();
    await journal.save(result('t1'), 5);
    expect(hash(await server.command('HGETALL', '{unit:bank}:journal:t1'))).toEqual({ result: JSON.stringify(result('t1')), epoch: '5' });
    expect(await journal.load('t1')).toEqual(result('t1'));

    const stale = journal.save(result('t1', 2), 4);
    await expect(stale).rejects.toBeInstanceOf(StaleEpochError);
    await expect(stale).rejects.toMatchObject({ code: 'STALE_EPOCH', epoch: 4, storedEpoch: 5, target: 'transfer "t1"' });
    expect(await journal.load('t1')).toEqual(result('t1'));
    await journal.save(result('t1', 3), 6);
    expect((await journal.load('t1'))?.amount).toBe(3);
  });

  it('the journal refuses to read a record that is not a transfer result', async () => {
    await server.command('HSET', '{unit:bank}:journal:junk', 'result', '{"id":"junk"}', 'epoch', '1');
    await expect(journal.load('junk')).rejects.toThrow(/Journal entry .* is malformed/);
  });

  it('shares the hash tag of the identity lookup ({keyPrefix:cluster}): every key of a cluster is in one Redis Cluster slot', () => {
    expect(redis.tag).toBe('{unit:bank}');
    expect(redis.key('ledger', 'alice')).toBe('{unit:bank}:ledger:alice');
    expect(redis.key('journal', 't1')).toBe('{unit:bank}:journal:t1');
  });
});

describe('sample app: the Redis stores when Redis fails (fail fast, typed errors)', () => {
  let server: RedisHandle;
  let redis: BankRedis | undefined;

  beforeAll(async () => {
    server = await startRedis({ label: 'failing stores' });
  });
  afterEach(async () => {
    await redis?.onApplicationShutdown();
    redis = undefined;
    if (server.paused) await server.resume();
    if (!server.alive) await server.restart();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('startup: a Redis that does not answer is a RedisConnectError naming the address and the cause', async () => {
    const port = await freePort();
    const attempt = connect({ url: `redis://127.0.0.1:${port}`, clusterName: 'bank' });
    await expect(attempt).rejects.toBeInstanceOf(RedisConnectError);
    await expect(attempt).rejects.toThrow(
      new RegExp(`^The ledger could not connect to Redis at 127\\.0\\.0\\.1:${port}: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\.$`),
    );
  });

  it('startup: a hung Redis is a RedisConnectError after connectTimeoutMs', async () => {
    await server.pause();
    const started = Date.now();
    await expect(connect({ url: server.url, clusterName: 'bank', connectTimeoutMs: 300 })).rejects.toThrow(
      /could not connect to Redis at .*: no answer within 300 ms\.$/,
    );
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('Redis down: reads and writes fail at once with STORE_UNAVAILABLE (certainly not applied), and work again once it is back', async () => {
    redis = await connect({ url: server.url, clusterName: 'bank' });
    const ledger = new RedisLedgerService(redis);
    await ledger.save('d', 5, 1);
    await server.save(); // a snapshot, so that the restart below finds the balance again
    await server.kill();
    // Once the client has seen the connection go (a read fails), nothing is even sent.
    await expect
      .poll(
        () =>
          ledger.load('d').then(
            () => 'up',
            () => 'down',
          ),
        { timeout: 2_000, interval: 10 },
      )
      .toBe('down');
    const started = Date.now();
    for (const operation of [() => ledger.load('d'), () => ledger.save('d', 6, 1), () => new RedisTransferJournal(redis!).save(result('t-down'), 1)]) {
      const error = await operation().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error).toMatchObject({ code: 'STORE_UNAVAILABLE', outcomeUnknown: false });
      expect((error as Error).message).toMatch(/failed: Redis is not available \(.*\); nothing was changed\.$/);
    }
    expect(Date.now() - started).toBeLessThan(500); // no waiting in an offline queue
    await server.restart({ keepData: true });
    // The client reconnects by itself.
    await expect.poll(() => ledger.load('d').catch(() => 'still reconnecting'), { timeout: 5_000, interval: 50 }).toEqual({ balance: 5, epoch: 1 });
    await ledger.save('d', 6, 1);
    expect(await ledger.load('d')).toEqual({ balance: 6, epoch: 1 });
  });

  it('Redis hung: a write times out with STORE_OUTCOME_UNKNOWN (it may have been applied — and here it is, once Redis resumes)', async () => {
    redis = await connect({ url: server.url, clusterName: 'bank', commandTimeoutMs: 200 });
    const ledger = new RedisLedgerService(redis);
    await ledger.save('h', 1, 1);
    await server.pause();
    const started = Date.now();
    const error = await ledger.save('h', 2, 1).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error).toMatchObject({ code: 'STORE_OUTCOME_UNKNOWN', outcomeUnknown: true });
    expect((error as Error).message).toMatch(
      /^The ledger save of account "h" was sent to Redis but not confirmed \(Command timed out\); it may or may not have been applied\.$/,
    );
    // A read that times out changed nothing: STORE_UNAVAILABLE.
    await expect(ledger.load('h')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await server.resume();
    await expect.poll(() => ledger.load('h').catch(() => undefined), { timeout: 3_000, interval: 50 }).toEqual({ balance: 2, epoch: 1 });
  });

  it('shutdown closes the connection; a store used after that fails with STORE_UNAVAILABLE', async () => {
    const own = await connect({ url: server.url, clusterName: 'bank' });
    expect(await clientNames(server)).toContain('bank-stores');
    await own.onApplicationShutdown();
    await expect.poll(() => clientNames(server), { timeout: 2_000, interval: 20 }).not.toContain('bank-stores');
    await expect(new RedisLedgerService(own).load('x')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
  });
});
