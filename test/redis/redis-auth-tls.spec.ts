import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  Cluster,
  ClusterUnavailableError,
  GrainConfigurationError,
  type GrainContext,
  RedisIdentityLookup,
  type RedisIdentityLookupOptions,
  StaticProvider,
} from 'nestjs-grains';
import { outcome, RecordingLogger, sleep } from '../support/cluster.js';
import { freePort } from '../support/free-port.js';
import { redactRedisUrl } from '../../lib/cluster/identity/redis/redis-url.js';
import { type RedisHandle, startRedis } from '../support/redis-server.js';

/** Passwords with every character a URL gives a meaning to: they must be percent-encoded in it, and never printed. */
const PASSWORD = 'Sup3r/s3cr@t#pass?x:y%z';
const APP_PASSWORD = 'app-Secr3t/@#?';
const WRONG_PASSWORD = 'Wr0ng/p@ss#word?q';

const encoded = encodeURIComponent;

class CounterGrain {
  private n = 0;
  constructor(readonly ctx: GrainContext) {}
  add(): { n: number; member: string } {
    return { n: ++this.n, member: this.ctx.memberId };
  }
}

interface Member {
  cluster: Cluster;
  lookup: RedisIdentityLookup;
  logger: RecordingLogger;
}

async function member(options: RedisIdentityLookupOptions, clusterName = 'auth'): Promise<Member> {
  const port = await freePort();
  const logger = new RecordingLogger();
  const lookup = new RedisIdentityLookup(options);
  const cluster = new Cluster({
    clusterName,
    logger,
    identityLookup: lookup,
    provider: new StaticProvider({ members: [`127.0.0.1:${port}`], probeIntervalMs: 20 }),
    remote: { host: '127.0.0.1', port },
  });
  cluster.registerKind({ name: 'counter', grainClass: CounterGrain, create: (ctx) => new CounterGrain(ctx) });
  return { cluster, lookup, logger };
}

/** `CLIENT LIST`, one record per connection. */
async function clients(redis: RedisHandle): Promise<Array<Record<string, string>>> {
  const text = String(await redis.command('CLIENT', 'LIST'));
  return text
    .trim()
    .split('\n')
    .map((line) => Object.fromEntries(line.split(' ').map((field) => [field.slice(0, field.indexOf('=')), field.slice(field.indexOf('=') + 1)])));
}

/** The lookup's connections: every one but the one asking (`CLIENT LIST` itself). */
async function lookupConnections(redis: RedisHandle): Promise<Array<Record<string, string>>> {
  return (await clients(redis)).filter((client) => client['cmd'] !== 'client|list');
}

/**
 * Start, call a grain, and see the lease renewed by the worker thread past a lease's length;
 * returns the lookup's connections as Redis sees them.
 */
async function startAndUse(redis: RedisHandle, options: RedisIdentityLookupOptions): Promise<Array<Record<string, string>>> {
  const m = await member(options);
  running.push(m);
  await m.cluster.start();
  const counters = m.cluster.client<CounterGrain>('counter');
  expect(await counters.get('c1').add()).toEqual({ n: 1, member: m.cluster.memberId });
  expect(await counters.get('c1').add()).toEqual({ n: 2, member: m.cluster.memberId });
  const leaseKey = `{grains:auth}:lease:${m.cluster.incarnation}`;
  const renewalsBefore = await evalshaCalls(redis);
  await sleep(1_800); // longer than FAST_LEASE's 1.5 s: alive only if the worker renewed it
  expect(Number(await redis.command('PTTL', leaseKey))).toBeGreaterThan(0);
  expect(await evalshaCalls(redis)).toBeGreaterThan(renewalsBefore + 2);
  expect(m.lookup.health()).toMatchObject({ reachable: true, ready: true });
  expect(await counters.get('c1').add()).toMatchObject({ n: 3 });
  const connections = await lookupConnections(redis);
  for (const line of m.logger.messages()) expect(line).not.toMatch(/s3cr|Secr3t/);
  return connections;
}

async function evalshaCalls(redis: RedisHandle): Promise<number> {
  const stats = String(await redis.command('INFO', 'commandstats'));
  return Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

/** The error a start fails with, checked to name no secret anywhere (message, stack, inspect, cause). */
async function failedStart(options: RedisIdentityLookupOptions, secrets: string[]): Promise<Error> {
  const m = await member(options);
  running.push(m);
  const started = Date.now();
  const result = await outcome(m.cluster.start());
  expect(result.ok).toBe(false);
  expect(Date.now() - started).toBeLessThan(10_000);
  const error = (result as { error: Error }).error;
  const printed = [error.message, String(error.stack), inspect(error, { depth: 10, showHidden: true }), JSON.stringify(error), ...m.logger.messages()].join(
    '\n',
  );
  for (const secret of secrets) {
    expect(printed).not.toContain(secret);
    expect(printed).not.toContain(encoded(secret));
  }
  return error;
}

const running: Member[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.cluster.shutdown().catch(() => {})));
});

describe('RedisIdentityLookup with AUTH (requirepass and an ACL user)', () => {
  let redis: RedisHandle;
  beforeAll(async () => {
    redis = await startRedis({ requirepass: PASSWORD, users: [{ username: 'app', password: APP_PASSWORD }] });
  });
  afterAll(async () => {
    await redis?.stop();
  });
  afterEach(async () => {
    await redis.flushAll();
  });

  it('the server refuses clients without the password (the harness is not fooling us)', async () => {
    const { redisCommand } = await import('../support/redis-server.js');
    await expect(redisCommand(redis.port, ['PING'])).rejects.toThrow(/NOAUTH/);
    expect(await redis.ping()).toBe(true);
  });

  it('redis://:password@host:port: the lookup, its lease worker and grain calls work', async () => {
    const connections = await startAndUse(redis, { url: `redis://:${encoded(PASSWORD)}@127.0.0.1:${redis.port}` });
    expect(connections).toHaveLength(2); // the lookup's connection and the lease worker's
    for (const connection of connections) expect(connection['user']).toBe('default');
  });

  it('redis://user:password@host:port (an ACL user): both connections authenticate as that user', async () => {
    const connections = await startAndUse(redis, { url: `redis://app:${encoded(APP_PASSWORD)}@127.0.0.1:${redis.port}` });
    expect(connections.map((c) => c['user'])).toEqual(['app', 'app']);
  });

  it('the password in `redis` options (over the url) reaches the worker too', async () => {
    const connections = await startAndUse(redis, { url: redis.url, redis: { username: 'app', password: APP_PASSWORD } });
    expect(connections.map((c) => c['user'])).toEqual(['app', 'app']);
  });

  it('a wrong password fails the start at once with a typed error that names no password', async () => {
    const error = await failedStart({ url: `redis://:${encoded(WRONG_PASSWORD)}@127.0.0.1:${redis.port}` }, [WRONG_PASSWORD, PASSWORD]);
    expect(error).toBeInstanceOf(GrainConfigurationError);
    expect(error.message).toMatch(/^RedisIdentityLookup: Redis refused the credentials \(WRONGPASS .*\)\. Check the user name and password/);
    const acl = await failedStart({ url: `redis://app:${encoded(WRONG_PASSWORD)}@127.0.0.1:${redis.port}` }, [WRONG_PASSWORD, APP_PASSWORD]);
    expect(acl).toBeInstanceOf(GrainConfigurationError);
    expect(acl.message).toContain('WRONGPASS');
  });

  it('no password at all fails the start with a typed error', async () => {
    const error = await failedStart({ url: redis.url }, [PASSWORD]);
    expect(error).toBeInstanceOf(GrainConfigurationError);
    expect(error.message).toMatch(/refused the credentials \(NOAUTH /);
  });
});

describe('RedisIdentityLookup over TLS (rediss://)', () => {
  let redis: RedisHandle;
  let mutual: RedisHandle;
  beforeAll(async () => {
    [redis, mutual] = await Promise.all([
      startRedis({ tls: { authClients: 'no' }, requirepass: PASSWORD }),
      startRedis({ tls: true }), // clients must present a certificate signed by the CA
    ]);
  });
  afterAll(async () => {
    await Promise.all([redis?.stop(), mutual?.stop()]);
  });
  afterEach(async () => {
    await Promise.all([redis.flushAll(), mutual.flushAll()]);
  });

  it('rediss:// + the CA + a password: every connection of the lookup, the worker’s too, is on the TLS port', async () => {
    const url = `rediss://:${encoded(PASSWORD)}@127.0.0.1:${redis.tlsPort}`;
    const connections = await startAndUse(redis, { url, redis: { tls: { ca: redis.tls!.ca } } });
    expect(connections).toHaveLength(2);
    for (const connection of connections) expect(connection['laddr']).toBe(`127.0.0.1:${redis.tlsPort}`);
  });

  it('mutual TLS: a client certificate in `redis.tls` (as Buffers) reaches the worker', async () => {
    const { ca, cert, key } = mutual.tls!;
    const tls = { ca: Buffer.from(ca), cert: Buffer.from(cert), key: Buffer.from(key) };
    const connections = await startAndUse(mutual, { url: mutual.tlsUrl!, redis: { tls } });
    expect(connections).toHaveLength(2);
    for (const connection of connections) expect(connection['laddr']).toBe(`127.0.0.1:${mutual.tlsPort}`);
  });

  it('mutual TLS without a client certificate fails the start with a typed error', async () => {
    const error = await failedStart({ url: mutual.tlsUrl!, redis: { tls: { ca: mutual.tls!.ca } } }, []);
    expect(error).toBeInstanceOf(ClusterUnavailableError);
    expect(error.message).toMatch(/^RedisIdentityLookup could not connect to Redis: .+/);
    expect(error.message).not.toContain('Connection is closed');
  });

  it('a server certificate the client does not trust fails the start with a typed error naming no password', async () => {
    const error = await failedStart({ url: `rediss://:${encoded(PASSWORD)}@127.0.0.1:${redis.tlsPort}` }, [PASSWORD]);
    expect(error).toBeInstanceOf(ClusterUnavailableError);
    expect(error.message).toMatch(/certificate/);
  });
});

describe('RedisIdentityLookup options the lease worker thread cannot receive', () => {
  let redis: RedisHandle;
  beforeAll(async () => {
    redis = await startRedis({ tls: { authClients: 'no' } });
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('a function in the TLS options fails the start at once, naming the option (it used to retry joining forever)', async () => {
    const checkServerIdentity = () => undefined;
    const error = await failedStart({ url: redis.tlsUrl!, redis: { tls: { ca: redis.tls!.ca, checkServerIdentity } } }, []);
    expect(error).toBeInstanceOf(GrainConfigurationError);
    expect(error.message).toContain('"tls.checkServerIdentity" cannot be passed to the lease worker thread');
    expect(error.message).not.toContain('=>'); // never the function's source
  });

  it("ioredis' keyPrefix fails the start, naming the lookup's own option; stringNumbers is overridden, so claims still read their epochs", async () => {
    const error = await failedStart({ url: redis.tlsUrl!, redis: { tls: { ca: redis.tls!.ca }, keyPrefix: 'app:' } }, []);
    expect(error).toBeInstanceOf(GrainConfigurationError);
    expect(error.message).toContain('"keyPrefix"');
    const m = await member({ url: redis.tlsUrl!, redis: { tls: { ca: redis.tls!.ca }, stringNumbers: true } }, 'auth');
    running.push(m);
    await m.cluster.start();
    expect(await m.cluster.client<CounterGrain>('counter').get('s').add()).toMatchObject({ n: 1 });
  });

  it('reconnection policies (retryStrategy, reconnectOnError) stay on the main connection; the worker does without', async () => {
    const m = await member({ url: redis.tlsUrl!, redis: { tls: { ca: redis.tls!.ca }, retryStrategy: () => 50, reconnectOnError: () => false } }, 'auth');
    running.push(m);
    await m.cluster.start();
    expect(await m.cluster.client<CounterGrain>('counter').get('r').add()).toMatchObject({ n: 1 });
  });
});

describe('a bad url never shows its password (RedisIdentityLookup errors)', () => {
  it.each([
    ['not a URL: an unencoded "/" in the password', 'redis://app:s3cr/et@127.0.0.1:6379', 's3cr/et', 'redis://app:***@127.0.0.1:6379', 'is not a valid URL'],
    ['not a URL: an unencoded "#" in the password', 'redis://:s3cr#et@127.0.0.1:6379', 's3cr#et', 'redis://:***@127.0.0.1:6379', 'is not a valid URL'],
    ['another scheme', 'http://app:s3cr%40et@127.0.0.1:6379', 's3cr%40et', 'http://app:***@127.0.0.1:6379', 'must start with redis://'],
    [
      'a broken percent-encoding',
      'redis://app:s3cr%zzet@127.0.0.1:6379',
      's3cr%zzet',
      'redis://app:***@127.0.0.1:6379',
      'has a user name or password that is not validly percent-encoded',
    ],
  ])('%s', (_case, url, secret, shown, problem) => {
    const result = (() => {
      try {
        new RedisIdentityLookup({ url });
      } catch (error) {
        return error as Error;
      }
      throw new Error('accepted');
    })();
    expect(result).toBeInstanceOf(GrainConfigurationError);
    expect(result.message).toContain(`RedisIdentityLookup url "${shown}" ${problem}`);
    expect(result.cause).toBeUndefined();
    const printed = [result.message, String(result.stack), inspect(result, { depth: 10, showHidden: true })].join('\n');
    for (const part of [secret, ...secret.split(/[/#%@]/).filter((p) => p.length > 2)]) expect(printed).not.toContain(part);
  });

  it('redactRedisUrl hides the user info up to the last "@", and anything after "?" or "#"', () => {
    expect(redactRedisUrl('rediss://app:p@ss/w#rd?@redis.internal:6380/2')).toBe('rediss://app:***@redis.internal:6380/2');
    expect(redactRedisUrl('redis://token@redis.internal')).toBe('redis://***@redis.internal');
    expect(redactRedisUrl('redis://redis.internal:6379/0?password=s3cret')).toBe('redis://redis.internal:6379/0?***');
    expect(redactRedisUrl('redis://127.0.0.1:6379/1')).toBe('redis://127.0.0.1:6379/1');
  });
});
