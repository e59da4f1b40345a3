import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, type GrainContext, RedisIdentityLookup, StaticProvider } from 'nestjs-grains';
import { RecordingLogger } from '../support/cluster.js';
import { freePort } from '../support/free-port.js';
import { type RedisHandle, startRedis } from '../support/redis-server.js';

class EchoGrain {
  constructor(readonly ctx: GrainContext) {}
  where(): string {
    return this.ctx.memberId;
  }
}

/**
 * A member takes calls from the moment `start()` begins; its provider lists no member until
 * the lookup has joined. A call made meanwhile is placed here all the same (this member
 * hosts the kind), not refused as a kind no member hosts.
 */
describe('calls made while a member starts', () => {
  let redis: RedisHandle;
  let cluster: Cluster | undefined;
  beforeAll(async () => {
    redis = await startRedis({ label: 'calls-while-starting' });
  });
  afterAll(async () => {
    await redis.stop();
  });
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  for (const placement of ['prefer-local', 'random', 'rendezvous'] as const) {
    it(`places them on this member (${placement})`, async () => {
      const port = await freePort();
      cluster = new Cluster({
        clusterName: 'starting',
        logger: new RecordingLogger(),
        identityLookup: new RedisIdentityLookup({ url: redis.url, placement }),
        provider: new StaticProvider({ members: [`127.0.0.1:${port}`], probeInterval: 50 }),
        remote: { host: '127.0.0.1', port },
        requestTimeout: '5s',
      });
      cluster.registerKind({ name: 'echo', grainClass: EchoGrain, create: (ctx) => new EchoGrain(ctx) });
      const starting = cluster.start();
      const early = cluster.client<EchoGrain>('echo').get(`early-${placement}`).where();
      await starting;
      expect(await early).toBe(cluster.memberId);
    });
  }
});
