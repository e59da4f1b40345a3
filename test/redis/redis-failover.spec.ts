/**
 * Redis failover, with real redis-servers: a primary and its replica, promoted with
 * `REPLICAOF NO ONE` (what Sentinel does). The promoted replica carries the old primary's keys
 * (its generation among them) but may lack the newest claims, so the scripts must not take
 * that generation for current there: a generation is current only on the Redis process that
 * wrote it (its run_id).
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { FAST_LEASE } from 'nestjs-grains';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readGeneration } from '../../lib/cluster/identity/redis/redis-generation.js';
import { RedisKeys } from '../../lib/cluster/identity/redis/redis-keys.js';
import { scripts } from '../../lib/cluster/identity/redis/redis-scripts.js';
import { sleep } from '../support/cluster.js';
import { type RedisHandle, startRedis } from '../support/redis-server.js';

/** Long enough that no lease written by the test lapses during it. */
const TEST_LEASE_MS = 60_000;
/** How long the replica may take to sync, and a write to reach it. */
const REPLICATION_MS = 10_000;

const keys = new RedisKeys('grains', 'failover-test');
const NAME = 'counter/f1';

describe('a promoted replica (real redis-servers: a primary and its replica)', () => {
  let primary: RedisHandle;
  let replica: RedisHandle;
  let clients: Redis[] = [];
  beforeEach(async () => {
    // NOTE: no diskless-sync delay (5 s by default), so the replica syncs at once.
    primary = await startRedis({ label: 'primary', args: ['--repl-diskless-sync-delay', '0'] });
    replica = await startRedis({ label: 'replica', args: ['--replicaof', primary.host, String(primary.port)] });
    let linked = false;
    const until = Date.now() + REPLICATION_MS;
    while (!linked && Date.now() < until) {
      linked = (await replica.info('replication'))['master_link_status'] === 'up';
      if (!linked) await sleep(20);
    }
    expect(linked, 'the replica synced with the primary').toBe(true);
  });
  afterEach(async () => {
    for (const c of clients) c.disconnect();
    clients = [];
    await replica?.stop();
    await primary?.stop();
  });

  const client = async (server: RedisHandle) => {
    const c = await server.connect();
    clients.push(c);
    return c;
  };

  /** A member's generation and lease on the primary, replicated; then the replica is promoted and the primary killed. */
  async function failover(): Promise<{ generation: string; incarnation: string; promoted: Redis }> {
    const p = await client(primary);
    const { generation } = await readGeneration(p, keys.generation, { generation: '' });
    const incarnation = randomUUID();
    await p.set(keys.lease(incarnation), incarnation, 'PX', TEST_LEASE_MS);
    expect(await p.call('WAIT', '1', String(REPLICATION_MS)), 'the writes reached the replica').toBe(1);
    await replica.command('REPLICAOF', 'NO', 'ONE');
    await primary.kill();
    const promoted = await client(replica);
    expect(await promoted.get(keys.generation)).toBe(generation); // it carries the old primary's generation
    return { generation, incarnation, promoted };
  }

  it('refuses claims and renewals under the generation the old primary wrote', async () => {
    const { generation, incarnation, promoted } = await failover();
    const claim = await scripts.claim.run(
      promoted,
      [keys.generation, keys.lease(incarnation), keys.activations(incarnation), keys.entry(NAME)],
      [generation, incarnation, 'member-1', '127.0.0.1:1', keys.leasePrefix, keys.entryPrefix, '0', 'activation-1'],
    );
    expect(claim).toEqual(['GEN']);
    expect(await scripts.renew.run(promoted, [keys.generation, keys.lease(incarnation)], [generation, incarnation, FAST_LEASE.leaseMs])).toBe('GEN');
    expect(await promoted.hget(keys.entry(NAME), 'incarnation')).toBe(null);
  });

  it('starts a generation of its own there, in which nobody joins for a lease, by its clock', async () => {
    const { generation: old, promoted } = await failover();
    const { generation, changed } = await readGeneration(promoted, keys.generation, { generation: old });
    expect(changed).toBe(true);
    expect(generation.endsWith(`:${await replica.runId()}`)).toBe(true);
    const incarnation = randomUUID();
    const join = () => scripts.join.run(promoted, [keys.generation, keys.lease(incarnation), keys.incarnations], [generation, incarnation, FAST_LEASE.leaseMs]);
    expect(String(await join())).toMatch(/^EARLY:\d+$/);
    await sleep(FAST_LEASE.leaseMs);
    expect(await join()).toBe('OK');
  });
});
