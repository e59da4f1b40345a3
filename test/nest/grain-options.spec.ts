import 'reflect-metadata';
import { Injectable, type INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Cluster,
  ClusterModule,
  Grain,
  type GrainClient,
  GrainConfigurationError,
  GrainTimeoutError,
  InjectGrainClient,
  InMemoryIdentityLookup,
  type LookupMember,
  type PlacementStrategy,
} from 'nestjs-grains';
import type { Member } from '../../lib/cluster/providers/cluster-provider.js';
import { outcome, sleep } from '../support/cluster.js';

/** A placement of the app's own, to see which one the lookup is handed. */
const nearest: PlacementStrategy = { name: 'nearest', place: (_kind: string, _identity: string, candidates: readonly Member[]) => candidates[0] };

@Grain({ kind: 'brief', requestTimeout: '50ms', placement: nearest })
class BriefGrain {
  async slow(ms: number): Promise<string> {
    await sleep(ms);
    return 'done';
  }
}

@Grain({ kind: 'patient', placement: 'rendezvous' })
class PatientGrain {
  async slow(ms: number): Promise<string> {
    await sleep(ms);
    return 'done';
  }
}

@Injectable()
class Callers {
  constructor(
    @InjectGrainClient(BriefGrain) readonly byClass: GrainClient<BriefGrain>,
    @InjectGrainClient('brief') readonly byName: GrainClient<BriefGrain>,
    @InjectGrainClient('patient') readonly patient: GrainClient<PatientGrain>,
  ) {}
}

/** The embedded lookup, keeping what the member hands it. */
class RecordingLookup extends InMemoryIdentityLookup {
  seen: LookupMember | undefined;
  override async setup(member: LookupMember): Promise<void> {
    this.seen = member;
    await super.setup(member);
  }
}

async function createApp(imports: unknown[], providers: unknown[] = []): Promise<INestApplication> {
  @Module({ imports: imports as never[], providers: providers as never[] })
  class TestAppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [TestAppModule] }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

describe('@Grain({ requestTimeout, placement })', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('requestTimeout is the deadline of calls to the kind hosted here, through any of its clients, unless a call gives its own', async () => {
    @Module({ imports: [ClusterModule.forFeature(['brief', 'patient'])], providers: [Callers] })
    class CallersModule {}
    app = await createApp([
      ClusterModule.forRoot({ clusterName: 'grain-options', drainTimeout: '2s' }),
      ClusterModule.forFeature([BriefGrain, PatientGrain]),
      CallersModule,
    ]);
    const callers = app.get(Callers);
    for (const client of [callers.byClass, callers.byName]) {
      const result = await outcome(client.get('a').slow(300));
      expect((result as { error: unknown }).error).toBeInstanceOf(GrainTimeoutError);
      expect((result as { error: GrainTimeoutError }).error.timeoutMs).toBe(50);
    }
    expect(((await outcome(app.get(Cluster).request('brief', 'b', 'slow', [300]))) as { error: GrainTimeoutError }).error.timeoutMs).toBe(50);
    expect(await callers.byName.get('c', { timeout: '5s' }).slow(150)).toBe('done');
    expect(await callers.patient.get('a').slow(150)).toBe('done'); // the module's requestTimeout (10 s)
  });

  it('placement is handed to the identity lookup for the kind hosted here', async () => {
    const lookup = new RecordingLookup();
    app = await createApp([
      ClusterModule.forRoot({ clusterName: 'grain-options', identityLookup: lookup }),
      ClusterModule.forFeature([BriefGrain, PatientGrain]),
    ]);
    expect(lookup.seen?.placementOf?.('brief')).toBe(nearest);
    expect(lookup.seen?.placementOf?.('patient')?.name).toBe('rendezvous');
    expect(lookup.seen?.placementOf?.('elsewhere')).toBeUndefined();
  });

  it('refuses at startup a requestTimeout or placement that cannot work, naming the class', async () => {
    @Grain({ requestTimeout: 'soon' as never })
    class HastyGrain {}
    await expect(createApp([ClusterModule.forRoot({ clusterName: 'bad' }), ClusterModule.forFeature([HastyGrain])])).rejects.toThrow(
      /HastyGrain requestTimeout: "soon" is not a duration/,
    );
    @Grain({ placement: 'closest' as never })
    class LostGrain {}
    await expect(createApp([ClusterModule.forRoot({ clusterName: 'bad' }), ClusterModule.forFeature([LostGrain])])).rejects.toBeInstanceOf(
      GrainConfigurationError,
    );
    await expect(createApp([ClusterModule.forRoot({ clusterName: 'bad' }), ClusterModule.forFeature([LostGrain])])).rejects.toThrow(
      /Grain class "LostGrain" placement: "closest" is not a placement/,
    );
    @Grain({ requestTimeout: '1h' })
    class EndlessGrain {}
    await expect(createApp([ClusterModule.forRoot({ clusterName: 'bad', remote: {} }), ClusterModule.forFeature([EndlessGrain])])).rejects.toThrow(
      /Grain class "EndlessGrain": requestTimeout \(3600000 ms\) is longer than members accept \(remote\.inbound\.maxTimeoutMs/,
    );
  });
});
