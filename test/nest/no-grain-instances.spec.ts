import 'reflect-metadata';
import { Injectable, type INestApplication, Module, type OnApplicationBootstrap, SetMetadata } from '@nestjs/common';
import { DiscoveryModule, DiscoveryService, MetadataScanner, ModulesContainer } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, ClusterModule, Grain, type GrainClient, type GrainContext, InjectGrainClient, InjectGrainContext } from 'nestjs-grains';

/** A method decorator of another module, as `@Cron()` of @nestjs/schedule is. */
const EVERY_MINUTE = 'test:every-minute';
const EveryMinute = () => SetMetadata(EVERY_MINUTE, true);

/** What the scheduled methods did, by who ran them. */
const ran: string[] = [];

@Grain({ kind: 'report' })
class ReportGrain {
  constructor(@InjectGrainContext() private readonly ctx: GrainContext) {}
  /** A grain's own timer would be `ctx.startTimer`; a stray scheduler must never run this. */
  @EveryMinute()
  refresh(): string {
    ran.push(`ReportGrain.refresh on ${String(this.ctx?.identity)}`);
    return `refreshed ${this.ctx.identity}`;
  }
}

@Injectable()
class Housekeeping {
  @EveryMinute()
  sweep(): void {
    ran.push('Housekeeping.sweep');
  }
}

/**
 * An explorer of another module, shaped like @nestjs/schedule's: it walks every provider's
 * instance and runs the methods marked on its prototype.
 */
@Injectable()
class SchedulerExplorer implements OnApplicationBootstrap {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
  ) {}
  onApplicationBootstrap(): void {
    for (const wrapper of this.discovery.getProviders()) {
      const instance = wrapper.instance as Record<string, unknown> | undefined;
      if (instance === undefined || instance === null || typeof instance !== 'object') continue;
      const prototype = Object.getPrototypeOf(instance) as object | null;
      if (prototype === null) continue;
      for (const method of this.scanner.getAllMethodNames(prototype)) {
        const fn = instance[method];
        if (typeof fn === 'function' && Reflect.getMetadata(EVERY_MINUTE, fn) === true) {
          try {
            (fn as () => unknown).call(instance);
          } catch (error) {
            ran.push(`threw: ${(error as Error).message}`);
          }
        }
      }
    }
  }
}

@Injectable()
class Reports {
  constructor(@InjectGrainClient(ReportGrain) readonly client: GrainClient<ReportGrain>) {}
}

describe('forFeature registers no object that looks like a grain instance', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
    ran.length = 0;
  });

  it('leaves no provider value with the grain prototype, so explorers of other modules run nothing on a grain; grains are still hosted', async () => {
    @Module({
      imports: [DiscoveryModule, ClusterModule.forRoot({ clusterName: 'no-instances' }), ClusterModule.forFeature([ReportGrain])],
      providers: [SchedulerExplorer, Housekeeping, Reports],
    })
    class AppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();

    // Every value in the container: providers, injectables and controllers of every module.
    const values: unknown[] = [];
    for (const module of app.get(ModulesContainer).values()) {
      for (const wrappers of [module.providers, module.injectables, module.controllers]) {
        for (const wrapper of wrappers.values()) values.push(wrapper.instance);
      }
    }
    expect(values.length).toBeGreaterThan(10); // the walk is not vacuous
    expect(values.filter((value) => value instanceof ReportGrain)).toEqual([]);
    expect(values.filter((value) => typeof value === 'object' && value !== null && ReportGrain.prototype.isPrototypeOf(value))).toEqual([]);

    // The other module's explorer ran, found its own method, and nothing of the grain's.
    expect(ran).toEqual(['Housekeeping.sweep']);

    // The grain is still discovered, hosted and called (its method runs in an activation).
    expect(app.get(Cluster).kindNames).toEqual(['report']);
    expect(await app.get(Reports).client.get('r1').refresh()).toBe('refreshed r1');
    expect(ran).toEqual(['Housekeeping.sweep', 'ReportGrain.refresh on r1']);
    expect(app.get(Cluster).stats().activations).toBe(1);
  });
});
