import 'reflect-metadata';
import { Injectable, type INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  Cluster,
  ClusterModule,
  Grain,
  type GrainClient,
  type GrainContext,
  HashIdentityLookup,
  Idempotent,
  InjectGrainClient,
  InjectGrainContext,
  StaticProvider,
} from 'nestjs-grains';
import { eventually } from '../support/cluster.js';
import { freePort } from '../support/free-port.js';

@Grain({ kind: 'greeter' })
class GreeterGrain {
  constructor(@InjectGrainContext() private readonly ctx: GrainContext) {}
  greet(name: string): { text: string; member: string } {
    return { text: `hello ${name} from ${this.ctx.identity}`, member: this.ctx.memberId };
  }
  @Idempotent()
  read(): string {
    return this.ctx.identity;
  }
}

@Injectable()
class Gateway {
  constructor(@InjectGrainClient('greeter') readonly greeters: GrainClient<GreeterGrain>) {}
}

async function memberApp(clusterName: string, members: string[], port: number | undefined, host: boolean): Promise<INestApplication> {
  @Module({
    imports: [
      ClusterModule.forRoot({
        clusterName,
        provider: new StaticProvider({ members, probeInterval: 50 }),
        identityLookup: new HashIdentityLookup(),
        remote: port === undefined ? {} : { host: '127.0.0.1', port },
      }),
      ClusterModule.forFeature(host ? [GreeterGrain] : ['greeter']),
    ],
    providers: [Gateway],
  })
  class MemberModule {}
  const moduleRef = await Test.createTestingModule({ imports: [MemberModule] }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

describe('ClusterModule in cluster mode (static members, hash placement, gRPC)', () => {
  const apps: INestApplication[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  it('serves grains from two hosting members to a client-only member, typed by kind name', async () => {
    const ports = [await freePort(), await freePort()];
    const members = ports.map((p) => `127.0.0.1:${p}`);
    apps.push(
      await memberApp('nest-cluster', members, ports[0], true),
      await memberApp('nest-cluster', members, ports[1], true),
      await memberApp('nest-cluster', members, undefined, false),
    );
    const gateway = apps[2]!;
    // every member knows the whole (static) membership once it is ready
    await Promise.all(apps.map((app) => app.get(Cluster).whenReady('5s')));
    expect(
      await eventually(
        () =>
          gateway
            .get(Cluster)
            .members()
            .filter((m) => m.kinds.includes('greeter')).length === 2,
        5_000,
      ),
    ).toBe(true);
    const greeters = gateway.get(Gateway).greeters;
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => greeters.get(`g${i}`).greet('ada')));
    expect(results[3]!.text).toBe('hello ada from g3');
    expect(new Set(results.map((r) => r.member))).toEqual(new Set(members));
    expect(gateway.get(Cluster).stats().activations).toBe(0); // the client-only member hosts nothing
    expect(await greeters.get('g1').read()).toBe('g1');
    // the hosting members agree on where each grain lives
    const fromFirst = await apps[0]!.get(Gateway).greeters.get('g7').greet('x');
    const fromSecond = await apps[1]!.get(Gateway).greeters.get('g7').greet('x');
    expect(fromFirst.member).toBe(fromSecond.member);
  });

  it('passes @Idempotent() methods to the runtime', async () => {
    const registered = vi.spyOn(Cluster.prototype, 'registerKind');
    try {
      const port = await freePort();
      apps.push(await memberApp('nest-idem', [`127.0.0.1:${port}`], port, true));
      const greeter = registered.mock.calls.map(([definition]) => definition).find((definition) => definition.name === 'greeter')!;
      expect([...(greeter.idempotentMethods ?? [])]).toEqual(['read']);
    } finally {
      registered.mockRestore();
    }
  });
});
