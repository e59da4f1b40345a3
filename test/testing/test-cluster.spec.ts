import { afterEach, describe, expect, it } from 'vitest';
import {
  ClusterUnavailableError,
  type GrainContext,
  GrainConfigurationError,
  GrainSerializationError,
  HashIdentityLookup,
  type IdentityLookup,
  type KindDefinition,
} from 'nestjs-grains';
import { createTestCluster, type TestCluster } from '../../lib/testing/index.js';

class Money {
  constructor(readonly cents: number) {}
}

class AccountGrain {
  private balance = 0;
  constructor(private readonly ctx: GrainContext) {}
  deposit(cents: number): { balance: number; member: string } {
    this.balance += cents;
    return { balance: this.balance, member: this.ctx.memberId };
  }
  depositMoney(money: { cents: number }): number {
    return (this.balance += money.cents);
  }
}

const account: KindDefinition<AccountGrain> = { name: 'account', grainClass: AccountGrain, create: (ctx) => new AccountGrain(ctx) };

describe('createTestCluster: members in this process over the real remote', () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it('starts three members that know each other, and calls a grain on another member', async () => {
    cluster = await createTestCluster({ members: 3, kinds: [account] });
    const [first, , third] = cluster.members;
    expect(cluster.members.map((m) => m.memberId)).toEqual(['member-0', 'member-1', 'member-2']);
    for (const member of cluster.members) {
      expect(member.ready).toBe(true);
      expect(
        member
          .members()
          .map((m) => m.id)
          .sort(),
      ).toEqual(['member-0', 'member-1', 'member-2']);
      expect(member.remoteAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    }
    const id = cluster.identityOn('account', 2);
    expect(cluster.memberOf('account', id)).toBe(third);
    const accounts = first!.client<AccountGrain>('account');
    expect(await accounts.get(id).deposit(5)).toEqual({ balance: 5, member: 'member-2' });
    expect(await accounts.get(id).deposit(7)).toEqual({ balance: 12, member: 'member-2' });
    // the call crossed: the grain lives on the third member only
    expect(first!.stats().activations).toBe(0);
    expect(third!.stats().activations).toBe(1);
    expect(first!.stats().pidCache.size).toBe(1);
  });

  it('puts every grain where memberOf says, whichever member calls', async () => {
    cluster = await createTestCluster({ members: 3, kinds: [account] });
    for (let i = 0; i < 12; i++) {
      const caller = cluster.members[i % 3]!;
      const placed = await caller.client<AccountGrain>('account').get(`a${i}`).deposit(1);
      expect(placed.member).toBe(cluster.memberOf('account', `a${i}`).memberId);
    }
  });

  it('runs the real codec between members: a class instance argument fails with GrainSerializationError', async () => {
    cluster = await createTestCluster({ members: 2, kinds: [account] });
    const remote = cluster.identityOn('account', 1);
    const refs = cluster.members[0]!.client<AccountGrain>('account').get(remote);
    expect(await refs.depositMoney({ cents: 3 })).toBe(3);
    const error = await refs.depositMoney(new Money(3)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GrainSerializationError);
    expect(error).toMatchObject({ code: 'GRAIN_SERIALIZATION', neverRan: true });
  });

  it('gives each member its own kinds when kinds is a function', async () => {
    const created: number[] = [];
    cluster = await createTestCluster({
      members: 2,
      kinds: (member) => [
        {
          ...account,
          create: (ctx) => {
            created.push(member);
            return new AccountGrain(ctx);
          },
        },
      ],
    });
    await cluster.members[0]!.client<AccountGrain>('account').get(cluster.identityOn('account', 1)).deposit(1);
    expect(created).toEqual([1]);
  });

  it('refuses a member count that is not a positive integer, before starting anything', async () => {
    await expect(createTestCluster({ members: 0, kinds: [account] })).rejects.toBeInstanceOf(GrainConfigurationError);
  });

  it('refuses one lookup or provider object for every member, saying how to give each its own', async () => {
    const shared = new HashIdentityLookup();
    await expect(createTestCluster({ members: 2, kinds: [account], options: { identityLookup: shared } })).rejects.toThrow(GrainConfigurationError);
    await expect(createTestCluster({ members: 2, kinds: [account], options: { identityLookup: shared } })).rejects.toThrow(/options: \(i\) =>/);
    cluster = await createTestCluster({ members: 2, kinds: [account], options: () => ({ identityLookup: new HashIdentityLookup() }) });
    expect(cluster.members).toHaveLength(2);
  });

  it('readyTimeout bounds the start too: a member whose lookup never sets up fails the cluster in time, and the others stop', async () => {
    const hanging: IdentityLookup = {
      ...new HashIdentityLookup(),
      name: 'hangs',
      setup: () => new Promise<void>(() => {}),
      get: () => new Promise(() => {}),
      remove: () => {},
      shutdown: async () => {},
    };
    const started = Date.now();
    await expect(
      createTestCluster({ members: 2, kinds: [account], readyTimeout: 300, options: (i) => (i === 1 ? { identityLookup: hanging } : {}) }),
    ).rejects.toThrow(ClusterUnavailableError);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
