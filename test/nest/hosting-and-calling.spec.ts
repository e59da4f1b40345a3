import 'reflect-metadata';
import { Injectable, type INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Cluster,
  ClusterModule,
  type ClusterModuleOptions,
  Grain,
  type GrainClient,
  type GrainContext,
  GrainTimeoutError,
  HashIdentityLookup,
  InjectGrainClient,
  InjectGrainContext,
  StaticProvider,
  UnknownKindError,
} from 'nestjs-grains';
import { eventually, outcome, sleep } from '../support/cluster.js';
import { freePort } from '../support/free-port.js';

@Grain({ kind: 'account', requestTimeout: '100ms' })
class AccountGrain {
  constructor(@InjectGrainContext() private readonly ctx: GrainContext) {}
  whereAmI(): string {
    return this.ctx.memberId;
  }
  async slow(ms: number): Promise<string> {
    await sleep(ms);
    return this.ctx.memberId;
  }
}

/** Calls accounts by kind name, as a caller that imports the grain as a type only does. */
@Injectable()
class Accounts {
  constructor(@InjectGrainClient('account') readonly client: GrainClient<AccountGrain>) {}
}

async function memberApp(cluster: ClusterModuleOptions, feature: ReadonlyArray<typeof AccountGrain | string>): Promise<INestApplication> {
  @Module({ imports: [ClusterModule.forRoot({ drainTimeout: '2s', ...cluster }), ClusterModule.forFeature(feature)], providers: [Accounts] })
  class MemberModule {}
  const moduleRef = await Test.createTestingModule({ imports: [MemberModule] }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

describe('hosting a kind, or only calling it', () => {
  const apps: INestApplication[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  it("forFeature([AccountGrain]) hosts the kind; forFeature(['account']) only calls it, on the member that hosts it", async () => {
    const port = await freePort();
    const members = [`127.0.0.1:${port}`];
    const options = (remote: ClusterModuleOptions['remote']): ClusterModuleOptions => ({
      clusterName: 'hosting',
      provider: new StaticProvider({ members, probeInterval: 50 }),
      identityLookup: new HashIdentityLookup(),
      remote,
    });
    const host = await memberApp(options({ host: '127.0.0.1', port }), [AccountGrain]);
    apps.push(host);
    const caller = await memberApp(options({}), ['account']);
    apps.push(caller);
    await Promise.all(apps.map((app) => app.get(Cluster).whenReady('5s')));
    expect(
      await eventually(
        () =>
          caller
            .get(Cluster)
            .members()
            .some((m) => m.kinds.includes('account')),
        5_000,
      ),
    ).toBe(true);

    expect(host.get(Cluster).kindNames).toEqual(['account']);
    expect(caller.get(Cluster).kindNames).toEqual([]);
    const accounts = caller.get(Accounts).client;
    const answeredBy = await Promise.all(Array.from({ length: 10 }, (_, i) => accounts.get(`a${i}`).whereAmI()));
    expect(new Set(answeredBy)).toEqual(new Set([host.get(Cluster).memberId]));
    expect(caller.get(Cluster).stats().activations).toBe(0);
    expect(host.get(Cluster).stats().activations).toBe(10);

    // The kind's requestTimeout ('100ms') is known where it is hosted; the caller knows the kind by
    // name only, and gives its calls its own requestTimeout (the default, 10 s).
    const onHost = await outcome(host.get(Accounts).client.get('h').slow(400));
    expect((onHost as { error: GrainTimeoutError }).error).toBeInstanceOf(GrainTimeoutError);
    expect((onHost as { error: GrainTimeoutError }).error.timeoutMs).toBe(100);
    expect(await accounts.get('c').slow(400)).toBe(host.get(Cluster).memberId);
  });

  it('a member that only calls a kind nobody hosts fails the call with UnknownKindError', async () => {
    const app = await memberApp({ clusterName: 'calling-only' }, ['account']);
    apps.push(app);
    expect(app.get(Cluster).kindNames).toEqual([]);
    await expect(app.get(Accounts).client.get('a1').whereAmI()).rejects.toBeInstanceOf(UnknownKindError);
  });

  it('refuses a kind name that cannot name a kind, saying what to pass instead', () => {
    for (const name of ['', 'Account Grain', 'ledger/main', '-x']) {
      expect(() => ClusterModule.forFeature([name])).toThrow(
        /ClusterModule\.forFeature\(\): ".*" is not a kind name; pass the name a @Grain\(\) class declares/,
      );
    }
  });
});
