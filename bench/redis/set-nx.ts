/**
 * The baseline of the "activation (redis)" scenario: a separate process (never loads
 * nestjs-grains) with ONE ioredis connection, as a member's lookup has, configured like the
 * lookup's (no offline queue, no retries, 1 s command timeout), running `SET key value NX`
 * on keys never used before from `callers` concurrent loops. Its keys go to their own database, so
 * they never mix with the lookup's keys; `flush` empties that database between rounds
 * (untimed).
 *
 *   node dist/bench/redis/set-nx.js redis://127.0.0.1:<port>/<db>
 */
import { cpuMicros, reportStartFailure, serveParent } from '../remote/child-process.js';
import { hrNow } from '../support/timing.js';
import type { SetNxRequest, TimedReply } from './protocol.js';

type Client = import('ioredis').Redis;

async function setNxLoop(redis: Client, keys: readonly string[], from: number, count: number): Promise<number> {
  let ok = 0;
  for (let i = 0; i < count; i++) if ((await redis.set(keys[from + i]!, '1', 'NX')) === 'OK') ok++;
  return ok;
}

try {
  const { Redis } = await import('ioredis');
  const url = new URL(process.argv[2] ?? '');
  const redis = new Redis({
    host: url.hostname,
    port: Number(url.port),
    db: Number(url.pathname.slice(1) || '1'),
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 1_000,
    lazyConnect: true,
  });
  redis.on('error', () => {});
  await redis.connect();
  serveParent(
    `${url.host}${url.pathname}`,
    {
      cpu: () => cpuMicros(),
      round: async (arg): Promise<TimedReply> => {
        const { prefix, callers, per } = arg as SetNxRequest;
        const keys = new Array<string>(callers * per);
        for (let j = 0; j < callers; j++) for (let i = 0; i < per; i++) keys[j * per + i] = `${prefix}${j}.${i}`;
        const loops = new Array<Promise<number>>(callers);
        const startNs = hrNow();
        for (let j = 0; j < callers; j++) loops[j] = setNxLoop(redis, keys, j * per, per);
        const done = await Promise.all(loops);
        const endNs = hrNow();
        const ok = done.reduce((a, b) => a + b, 0);
        if (ok !== callers * per) throw new Error(`SET NX: ${ok} of ${callers * per} new keys were set`);
        return { startNs, endNs, ops: callers * per };
      },
      flush: async () => {
        await redis.flushdb('ASYNC');
        return null;
      },
    },
    async () => {
      redis.disconnect();
    },
  );
} catch (error) {
  reportStartFailure(error);
}
