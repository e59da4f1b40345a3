import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, GrainTimeoutError, RedisIdentityLookup } from 'nestjs-grains';
import { outcome, RecordingLogger } from '../support/cluster.js';
import { type RedisHandle, startRedis } from '../support/redis-server.js';

class EchoGrain {
  echo(text: string): string {
    return text;
  }
}

/**
 * Calls keep their deadlines while they wait outside any mailbox: here for an identity
 * lookup that cannot answer (a real redis-server, paused with SIGSTOP).
 */
describe('deadlines of calls waiting for a lookup', () => {
  let redis: RedisHandle;
  let cluster: Cluster | undefined;
  beforeAll(async () => {
    redis = await startRedis({ label: 'lookup-deadlines' });
  });
  afterAll(async () => {
    await redis.stop();
  });
  afterEach(async () => {
    if (redis.paused) await redis.resume();
    await cluster?.shutdown();
    cluster = undefined;
  });

  it('times out at the deadline, not when a paused Redis lets the lookup command time out', async () => {
    cluster = new Cluster({
      clusterName: 'ld',
      logger: new RecordingLogger(),
      identityLookup: new RedisIdentityLookup({ url: redis.url, commandTimeout: '1s' }),
    });
    cluster.registerKind({ name: 'echo', grainClass: EchoGrain, create: () => new EchoGrain() });
    await cluster.start();
    const echoes = cluster.client<EchoGrain>('echo');
    expect(await echoes.get('warm').echo('hi')).toBe('hi');
    await redis.pause();
    const started = performance.now();
    const calls = await Promise.all(['a', 'a', 'b'].map((id) => outcome(echoes.get(id, { timeout: 100 }).echo(id))));
    const took = performance.now() - started;
    for (const call of calls) {
      expect(call.ok).toBe(false);
      expect((call as { error: unknown }).error).toBeInstanceOf(GrainTimeoutError);
      expect(((call as { error: unknown }).error as GrainTimeoutError).neverRan).toBe(true);
    }
    expect(took).toBeLessThan(600); // the deadline (100 ms) and the sweep, not the 1 s command timeout
  });
});
