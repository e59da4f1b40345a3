import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, type GrainContext, RedisIdentityLookup, StaticProvider } from 'nestjs-grains';
import { eventually, outcome, RecordingLogger, sleep } from '../support/cluster.js';
import { freePort } from '../support/free-port.js';
import { type RedisHandle, startRedis } from '../support/redis-server.js';

class PingGrain {
  constructor(readonly ctx: GrainContext) {}
  ping(): string {
    return this.ctx.memberId;
  }
}

/**
 * A member that takes a new incarnation (fenced, then rejoined) tells the members calling it
 * at once, on their open streams: otherwise a client-only member, which learns members only
 * from handshakes, would target the old incarnation for good ("not here" every time).
 */
describe('a new incarnation reaches the members calling it', () => {
  let redis: RedisHandle;
  const members: Cluster[] = [];
  beforeAll(async () => {
    redis = await startRedis({ label: 'incarnation-announce' });
  });
  afterAll(async () => {
    await redis.stop();
  });
  afterEach(async () => {
    await Promise.all(members.splice(0).map((m) => m.shutdown()));
  });

  it('lets a client-only member activate grains again soon after Redis lost its data', { timeout: 40_000 }, async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const host = new Cluster({
      clusterName: 'announce',
      logger: new RecordingLogger(),
      provider: new StaticProvider({ members: [address], probeInterval: 50 }),
      identityLookup: new RedisIdentityLookup({ url: redis.url }),
      remote: { host: '127.0.0.1', port },
    });
    host.registerKind({ name: 'ping', grainClass: PingGrain, create: (ctx) => new PingGrain(ctx) });
    const gateway = new Cluster({
      clusterName: 'announce',
      logger: new RecordingLogger(),
      provider: new StaticProvider({ members: [address], probeInterval: 50 }),
      identityLookup: new RedisIdentityLookup({ url: redis.url }),
      remote: {},
    });
    members.push(host, gateway);
    await host.start();
    await gateway.start();
    expect(await eventually(() => gateway.members().some((m) => m.id === host.memberId), 5_000)).toBe(true);
    const pings = gateway.client<PingGrain>('ping');
    expect(await pings.get('before').ping()).toBe(host.memberId);
    const incarnation = host.incarnation;

    await redis.restart(); // no persistence: the data is gone, a new generation begins
    expect(await eventually(() => host.incarnation !== incarnation, 10_000, 20)).toBe(true);
    // new grains get activated again within a few seconds (a lease, then the first claims)
    let served = false;
    const until = Date.now() + 12_000;
    while (!served && Date.now() < until) {
      const result = await outcome(pings.get(`after-${Date.now()}`, { timeout: 500 }).ping());
      served = result.ok;
      // NOTE: a call can fail at once (the gateway's own Redis connection reconnecting); a loop
      // that never yields to timers would starve the reconnect it waits for.
      if (!served) await sleep(20);
    }
    expect(served).toBe(true);
    // because the gateway heard of the new incarnation without a new handshake of its own
    expect(gateway.members().find((m) => m.id === host.memberId)?.incarnation).toBe(host.incarnation);
  });
});
