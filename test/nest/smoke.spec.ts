import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { describe, expect, it } from 'vitest';
import { ClusterModule, Grain, type GrainClient, type GrainContext, InjectGrainClient, InjectGrainContext } from 'nestjs-grains';

@Injectable()
class Store { readonly data = new Map<string, number>(); }

@Grain()
class CounterGrain {
  private n = 0;
  constructor(private readonly store: Store, @InjectGrainContext() private readonly ctx: GrainContext) {}
  async onGrainActivate() { this.n = this.store.data.get(this.ctx.identity) ?? 0; }
  async add(k: number) { this.n += k; this.store.data.set(this.ctx.identity, this.n); return this.n; }
  who() { return { id: this.ctx.identity, act: this.ctx.activationId, epoch: this.ctx.epoch }; }
}

@Injectable()
class User { constructor(@InjectGrainClient('counter') readonly counters: GrainClient<CounterGrain>) {} }

@Module({ imports: [ClusterModule.forRoot({ clusterName: 't' }), ClusterModule.forFeature([CounterGrain])], providers: [Store, User] })
class AppModule {}

describe('smoke', () => {
  it('calls a grain', async () => {
    const mod = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const app = mod.createNestApplication({ logger: false });
    await app.init();
    const user = app.get(User);
    expect(await user.counters.get('a').add(2)).toBe(2);
    expect(await user.counters.get('a').add(3)).toBe(5);
    expect(await user.counters.get('a').who()).toMatchObject({ id: 'a', epoch: 1 });
    const ref = user.counters.get('a');
    expect(await ref).toBe(ref);
    await app.close();
  });
});
