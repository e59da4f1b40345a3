import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { GrainContext } from 'nestjs-grains';
import { AccountGrain } from '../../sample-app/accounts/account.grain.js';
import { LedgerService } from '../../sample-app/accounts/ledger.service.js';
import { RedisLedgerService } from '../../sample-app/accounts/redis-ledger.service.js';
import { StaleEpochError } from '../../sample-app/common/stale-epoch.error.js';
import { BankRedis } from '../../sample-app/redis/bank-redis.js';
import { type RedisHandle, startRedis } from '../support/redis-server.js';

// Two activations of one account side by side, as after a lease lapsed: the old one (epoch N)
// has not noticed yet, a new one (epoch N+1) has activated elsewhere. The real AccountGrain over
// the real ledgers (in memory, and in a REAL redis-server), driven step by step, so that the
// interleaving is exact: the old activation writes after the new one loaded, before it wrote.

/** One activation of account `identity` with `epoch`: the grain as the runtime would build it. */
function activate(ledger: LedgerService, identity: string, epoch: number) {
  const ctx = {
    kind: 'account',
    identity,
    memberId: `member-${epoch}`,
    activationId: `member-${epoch}:${epoch}`,
    epoch,
    signal: new AbortController().signal,
    deactivate: vi.fn(),
    startTimer: vi.fn(),
    client: vi.fn(),
  } satisfies GrainContext;
  return { grain: new AccountGrain(ledger, ctx), ctx };
}

describe.each([
  ['in memory (LedgerService)', 'memory'],
  ['in Redis (RedisLedgerService, real redis-server)', 'redis'],
] as const)('sample app: the ledger fences an account when it activates, %s', (_name, store) => {
  let server: RedisHandle | undefined;
  let redis: BankRedis | undefined;
  let ledger: LedgerService;

  beforeAll(async () => {
    if (store === 'memory') {
      ledger = new LedgerService();
      return;
    }
    server = await startRedis({ label: 'activation fence' });
    redis = new BankRedis({ url: server.url, keyPrefix: 'fence', clusterName: 'bank' });
    await redis.onModuleInit();
    // The Redis ledger is provided under the in-memory one's token (app.module.ts).
    ledger = new RedisLedgerService(redis) as unknown as LedgerService;
  });
  afterAll(async () => {
    await redis?.onApplicationShutdown();
    await server?.stop();
  });

  it('a stale write that lands after the new activation loaded, before its first write, is refused (not accepted and then overwritten)', async () => {
    const id = 'fence-loaded';
    const old = activate(ledger, id, 1);
    await old.grain.onGrainActivate();
    await old.grain.deposit(100);

    const next = activate(ledger, id, 2);
    await next.grain.onGrainActivate(); // loads 100; has not written yet

    // The old activation has not noticed it was replaced: it takes one more deposit.
    const late = await old.grain.deposit(50).then(
      (value) => ({ accepted: value }),
      (error: unknown) => ({ refused: error }),
    );
    await next.grain.deposit(10);

    // Every deposit its caller was told succeeded must be in the stored balance.
    const confirmed = 100 + ('accepted' in late ? 50 : 0) + 10;
    const stored = await ledger.load(id);
    expect(stored?.balance, `the stale deposit of 50 was ${'accepted' in late ? `accepted (${JSON.stringify(late.accepted)})` : 'refused'}`).toBe(confirmed);
    expect(late).toEqual({ refused: expect.any(StaleEpochError) });
    expect((late as { refused: StaleEpochError }).refused).toMatchObject({ code: 'STALE_EPOCH', epoch: 1, storedEpoch: 2 });
    expect(old.ctx.deactivate).toHaveBeenCalled(); // the stale activation stops
    expect(stored).toEqual({ balance: 110, epoch: 2 });
  });

  it('the same for an account never written: the new activation fences it before any balance exists', async () => {
    const id = 'fence-empty';
    const old = activate(ledger, id, 5);
    await old.grain.onGrainActivate();
    const next = activate(ledger, id, 6);
    await next.grain.onGrainActivate(); // balance 0, nothing written by anyone yet

    await expect(old.grain.deposit(30)).rejects.toMatchObject({ code: 'STALE_EPOCH', epoch: 5, storedEpoch: 6 });
    await next.grain.deposit(7);
    expect(await ledger.load(id)).toEqual({ balance: 7, epoch: 6 });
  });
});
