import 'reflect-metadata';
import { Body, Controller, Injectable, Module, Param, Post } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Cluster,
  ClusterModule,
  getGrainClientToken,
  Grain,
  type GrainClient,
  type GrainContext,
  GrainInvocationError,
  GrainSerializationError,
  GrainTimeoutError,
  InjectGrainClient,
  InjectGrainContext,
  InvalidGrainCallError,
} from 'nestjs-grains';
import { createFakeGrainClient, createNestTestCluster } from '../../lib/testing/index.js';

@Injectable()
class Ledger {
  readonly balances = new Map<string, number>();
}

@Grain({ kind: 'account' })
class AccountGrain {
  constructor(
    private readonly ledger: Ledger,
    @InjectGrainContext() private readonly ctx: GrainContext,
  ) {}
  deposit(deposit: { amount: number }): { balance: number; member: string } {
    const balance = (this.ledger.balances.get(this.ctx.identity) ?? 0) + deposit.amount;
    this.ledger.balances.set(this.ctx.identity, balance);
    return { balance, member: this.ctx.memberId };
  }
}

/** What `ValidationPipe({ transform: true })` hands a controller: an instance, not plain data. */
class DepositDto {
  amount!: number;
}

@Injectable()
class AccountsService {
  constructor(@InjectGrainClient('account') private readonly accounts: GrainClient<AccountGrain>) {}
  deposit(id: string, deposit: { amount: number }) {
    return this.accounts.get(id).deposit(deposit);
  }
}

@Controller('accounts')
class AccountsController {
  constructor(private readonly service: AccountsService) {}
  @Post(':id/deposit')
  deposit(@Param('id') id: string, @Body() body: { amount: number }) {
    return this.service.deposit(id, body);
  }
}

/** The app as it ships: the embedded default, one member. */
@Module({
  imports: [ClusterModule.forRoot({ clusterName: 'bank', requestTimeout: '5s' }), ClusterModule.forFeature([AccountGrain])],
  controllers: [AccountsController],
  providers: [Ledger, AccountsService],
})
class AppModule {}

describe('createNestTestCluster: the app itself, as several members', () => {
  let cluster: { shutdown(): Promise<void> } | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it('compiles the app once per member and calls a grain on another member, keeping the forRoot options', async () => {
    const nest = await createNestTestCluster({ members: 3, module: () => Test.createTestingModule({ imports: [AppModule] }) });
    cluster = nest;
    const [first, second, third] = nest.modules;
    expect(nest.members.map((m) => m.clusterName)).toEqual(['bank', 'bank', 'bank']);
    expect(nest.members[0]!.requestTimeoutMs).toBe(5_000);
    expect(first!.get(Cluster)).toBe(nest.members[0]);
    const id = nest.identityOn('account', 2);
    expect(await first!.get(AccountsService).deposit(id, { amount: 5 })).toEqual({ balance: 5, member: 'member-2' });
    // each member has its own providers, as separate processes would
    expect(third!.get(Ledger).balances.get(id)).toBe(5);
    expect(first!.get(Ledger).balances.size).toBe(0);
    expect(second!.get(Ledger)).not.toBe(third!.get(Ledger));
  });

  it('turns serializeLocalCalls on: a DTO instance fails even for a grain on the calling member', async () => {
    const nest = await createNestTestCluster({ module: () => Test.createTestingModule({ imports: [AppModule] }) });
    cluster = nest;
    const service = nest.modules[0]!.get(AccountsService);
    const dto = Object.assign(new DepositDto(), { amount: 5 });
    for (const member of [0, 1]) {
      await expect(service.deposit(nest.identityOn('account', member), dto)).rejects.toBeInstanceOf(GrainSerializationError);
    }
    expect(await service.deposit(nest.identityOn('account', 0), { amount: 5 })).toMatchObject({ balance: 5 });
  });

  it('starts an HTTP application per member when asked', async () => {
    const nest = await createNestTestCluster({
      members: 2,
      module: () => Test.createTestingModule({ imports: [AppModule] }),
      start: (module) => module.createNestApplication({ logger: false }).init(),
    });
    cluster = nest;
    const id = nest.identityOn('account', 1);
    const response = await request(nest.apps[0]!.getHttpServer()).post(`/accounts/${id}/deposit`).send({ amount: 3 });
    expect(response.status).toBe(201);
    expect(response.body).toEqual({ balance: 3, member: 'member-1' });
  });

  it('says what is missing when the module has no ClusterModule.forRoot()', async () => {
    @Module({ providers: [Ledger] })
    class NoCluster {}
    await expect(createNestTestCluster({ module: () => Test.createTestingModule({ imports: [NoCluster] }) })).rejects.toThrow(
      /member 0 has no cluster member; import ClusterModule.forRoot\(\)/,
    );
  });
});

describe('overriding a grain client in a Nest test', () => {
  let module: TestingModule | undefined;
  afterEach(async () => {
    await module?.close();
    module = undefined;
  });

  it('replaces the client with overrideProvider(getGrainClientToken(kind)).useValue(fake)', async () => {
    const fake = createFakeGrainClient<AccountGrain>('account', (identity) => ({
      deposit: (deposit) => ({ balance: 100 + deposit.amount, member: `fake:${identity}` }),
    }));
    module = await Test.createTestingModule({ imports: [AppModule] })
      .overrideProvider(getGrainClientToken('account'))
      .useValue(fake)
      .compile();
    await module.init();
    const service = module.get(AccountsService);
    expect(await service.deposit('a1', { amount: 5 })).toEqual({ balance: 105, member: 'fake:a1' });
    expect(fake.calls).toEqual([{ identity: 'a1', method: 'deposit', args: [{ amount: 5 }], options: undefined }]);
    expect(module.get(Cluster).stats().activated).toBe(0); // the real grain never ran
  });

  it('finds the same provider by grain class', async () => {
    const fake = createFakeGrainClient<AccountGrain>(AccountGrain, { deposit: () => ({ balance: 1, member: 'fake' }) });
    expect(fake.kind).toBe('account');
    module = await Test.createTestingModule({ imports: [AppModule] })
      .overrideProvider(getGrainClientToken(AccountGrain))
      .useValue(fake)
      .compile();
    expect(await module.get(AccountsService).deposit('a1', { amount: 1 })).toEqual({ balance: 1, member: 'fake' });
  });

  it('behaves like a client: arguments cross the codec, errors arrive as the runtime hands them over', async () => {
    const fake = createFakeGrainClient<AccountGrain>('account', {
      deposit: (deposit) => {
        if (deposit.amount < 0) throw Object.assign(new RangeError('negative'), { code: 'NEGATIVE' });
        if (deposit.amount === 0) throw new GrainTimeoutError('account', 'a1', 'deposit', 10, false);
        return { balance: deposit.amount, member: 'fake' };
      },
    });
    const ref = fake.get('a1');
    await expect(ref.deposit(Object.assign(new DepositDto(), { amount: 1 }))).rejects.toBeInstanceOf(GrainSerializationError);
    await expect(ref.deposit({ amount: -1 })).rejects.toMatchObject({ name: 'GrainInvocationError', remoteName: 'RangeError', remoteCode: 'NEGATIVE' });
    await expect(ref.deposit({ amount: 0 })).rejects.toBeInstanceOf(GrainTimeoutError);
    await expect(ref.deposit({ amount: -1 })).rejects.toBeInstanceOf(GrainInvocationError);
    expect(() => fake.get('')).toThrow(InvalidGrainCallError);
    expect((ref as unknown as { then?: unknown }).then).toBeUndefined(); // awaiting a reference calls nothing
    const unfaked = createFakeGrainClient<AccountGrain>('account', {});
    await expect(unfaked.get('a1').deposit({ amount: 1 })).rejects.toThrow('has no deposit()');
  });
});

describe('ClusterModule.forRoot({ serializeLocalCalls: true })', () => {
  it('reaches the runtime: a single-member app fails a DTO instance as a cluster would', async () => {
    @Module({
      imports: [ClusterModule.forRoot({ clusterName: 'bank', serializeLocalCalls: true }), ClusterModule.forFeature([AccountGrain])],
      providers: [Ledger, AccountsService],
    })
    class SerializingAppModule {}
    const module = await Test.createTestingModule({ imports: [SerializingAppModule] }).compile();
    const app = module.createNestApplication({ logger: false });
    await app.init();
    try {
      const service = app.get(AccountsService);
      await expect(service.deposit('a1', Object.assign(new DepositDto(), { amount: 5 }))).rejects.toBeInstanceOf(GrainSerializationError);
      expect(await service.deposit('a1', { amount: 5 })).toMatchObject({ balance: 5 });
    } finally {
      await app.close();
    }
  });
});
