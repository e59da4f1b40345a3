import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Redis } from 'ioredis';
import { StoreUnavailableError } from '../common/store-unavailable.error.js';

/** Where the Redis-backed ledger and transfer journal keep their data (`BankOptions.redisStores`). */
export interface RedisStoresOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…`. */
  readonly url: string;
  /** First part of every key, as for `RedisIdentityLookup`. @default 'grains' */
  readonly keyPrefix?: string;
  /** Longest a store command may take before it fails (`StoreUnavailableError`). @default 1000 */
  readonly commandTimeoutMs?: number;
  /** Longest the connection may take at startup. @default 5000 */
  readonly connectTimeoutMs?: number;
}

/** The options `BankRedis` is built with: `RedisStoresOptions` and the cluster's name. */
export interface BankRedisOptions extends RedisStoresOptions {
  readonly clusterName: string;
}

/** Injection token of `BankRedisOptions`. */
export const BANK_REDIS_OPTIONS = Symbol('BANK_REDIS_OPTIONS');

/** The Redis connection could not be made at startup (the process then stops with one line). */
export class RedisConnectError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RedisConnectError';
  }
}

/** A write refused by the fence: the entry holds `storedEpoch`, higher than the writer's. */
export interface FencedWriteResult {
  readonly stale: boolean;
  readonly storedEpoch: number;
}

/** A fenced load: the values of the fields asked for (null when absent), or refused as stale. */
export type FencedLoadResult =
  { readonly stale: false; readonly values: ReadonlyArray<string | null> } | { readonly stale: true; readonly storedEpoch: number };

/**
 * Fenced write, atomic in Redis: set one field of an entry (a hash) together with the epoch of
 * the activation writing it, unless the entry already holds a higher epoch (a newer activation
 * of the same grain has loaded or written since; the writer is stale). An equal epoch is the
 * same activation writing again. Nothing is read and written in separate commands (no WATCH).
 * KEYS[1] the entry; ARGV[1] the writer's epoch, ARGV[2] the field, ARGV[3] its value.
 * Returns {'OK'} or {'STALE', stored epoch}.
 */
const FENCED_WRITE = `local stored = redis.call('HGET', KEYS[1], 'epoch')
if stored and tonumber(stored) > tonumber(ARGV[1]) then return {'STALE', stored} end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3], 'epoch', ARGV[1])
return {'OK'}`;

/**
 * Fenced load, atomic in Redis: raise the epoch of an entry (a hash) to the epoch of the
 * activation loading it, and read fields, unless the entry already holds a higher epoch (a newer
 * activation has loaded or written since; the loader is stale). From then on `FENCED_WRITE`
 * refuses every writer older than the loader, even before the loader's first write. An entry
 * never written is created with the epoch alone.
 * KEYS[1] the entry; ARGV[1] the loader's epoch, ARGV[2...] the fields to read.
 * Returns {'OK', {values}} (nil for a field absent) or {'STALE', stored epoch}.
 */
const FENCED_LOAD = `local stored = redis.call('HGET', KEYS[1], 'epoch')
if stored and tonumber(stored) > tonumber(ARGV[1]) then return {'STALE', stored} end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1])
return {'OK', redis.call('HMGET', KEYS[1], unpack(ARGV, 2))}`;

/** A Lua script run by its SHA1 (EVALSHA), sent whole (EVAL) only when Redis does not have it yet. */
interface Script {
  readonly source: string;
  readonly sha: string;
}
const script = (source: string): Script => ({ source, sha: createHash('sha1').update(source).digest('hex') });
const SCRIPTS = { fencedWrite: script(FENCED_WRITE), fencedLoad: script(FENCED_LOAD) };

/**
 * The one Redis connection of the ledger and the transfer journal (`RedisLedgerService`,
 * `RedisTransferJournal`), and the key schema they share: every key starts with the hash tag
 * `{keyPrefix:clusterName}`, the tag of the identity lookup's keys, so all of a cluster's keys
 * live in one Redis Cluster slot.
 *
 * Fail fast: the ledger is the bank's data store, so a command never waits in an offline queue
 * and is never resent after a reconnect (a write applied late, after the grain was told it
 * failed, would be a lost update). While Redis is unreachable, commands fail at once
 * (`STORE_UNAVAILABLE`, 503); one that was sent and not answered within `commandTimeoutMs`, or
 * whose connection was lost, fails with `STORE_OUTCOME_UNKNOWN` (504). The client keeps
 * reconnecting in the background.
 *
 * Connects in `onModuleInit` (a Redis that cannot be reached stops the startup with
 * `RedisConnectError`) and disconnects in `onApplicationShutdown`, after the cluster member
 * has drained its grains in `onModuleDestroy` (queued calls still write on their way out).
 */
@Injectable()
export class BankRedis implements OnModuleInit, OnApplicationShutdown {
  /** The hash tag every key starts with: `{keyPrefix:clusterName}`. */
  readonly tag: string;
  private readonly client: Redis;
  private readonly logger = new Logger('BankRedis');
  private readonly where: string;
  private readonly connectTimeoutMs: number;
  /** Connected once (until then, connection errors are reported by `onModuleInit` only). */
  private started = false;
  private outage = false;
  private lastError: Error | undefined;

  constructor(@Inject(BANK_REDIS_OPTIONS) options: BankRedisOptions) {
    this.tag = `{${options.keyPrefix ?? 'grains'}:${options.clusterName}}`;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
    const url = new URL(options.url);
    this.where = `${url.hostname}:${url.port === '' ? '6379' : url.port}`;
    this.client = new Redis(options.url, {
      lazyConnect: true,
      connectionName: 'bank-stores',
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      // NOTE: 0: commands in flight when the connection drops fail at once (outcome unknown)
      // instead of waiting for a reconnect that may never come.
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs ?? 1_000,
      connectTimeout: Math.min(this.connectTimeoutMs, 2_000),
      retryStrategy: (attempt) => Math.min(100 * attempt, 1_000),
    });
    this.client.on('error', (error: Error) => {
      this.lastError = error;
      if (this.outage || !this.started) return;
      this.outage = true;
      this.logger.warn(`Redis at ${this.where} is not reachable (${error.message}); ledger and journal operations fail until it is back.`);
    });
    this.client.on('ready', () => {
      if (!this.outage) return;
      this.outage = false;
      this.logger.log(`Redis at ${this.where} is reachable again.`);
    });
  }

  async onModuleInit(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.client.connect(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
        }),
      ]);
      this.started = true;
    } catch (error) {
      this.client.disconnect();
      // NOTE: connect() rejects with "Connection is closed."; the 'error' event said why.
      const cause = this.lastError ?? (error as Error);
      throw new RedisConnectError(`The ledger could not connect to Redis at ${this.where}: ${cause.message.replace(/\.$/, '')}.`, { cause });
    } finally {
      clearTimeout(timer);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      // QUIT lets replies still on their way arrive; a Redis that does not answer gets 1 s.
      await Promise.race([this.client.quit(), new Promise((resolve) => (timer = setTimeout(resolve, 1_000)))]);
    } catch {
      // Not connected: nothing to wait for.
    } finally {
      clearTimeout(timer);
      this.client.disconnect();
    }
  }

  /** The key of `name` in `space` (such as `ledger`, `alice`): `{keyPrefix:cluster}:space:name`. */
  key(space: string, name: string): string {
    return `${this.tag}:${space}:${name}`;
  }

  /** `HMGET key ...fields`. @throws StoreUnavailableError (`STORE_UNAVAILABLE`). */
  read(operation: string, key: string, fields: readonly string[]): Promise<Array<string | null>> {
    return this.run(operation, false, () => this.client.hmget(key, ...fields));
  }

  /**
   * Set `field` of `key` to `value` with `epoch`, unless the key holds a higher epoch (see
   * `FENCED_WRITE`).
   * @throws StoreUnavailableError (`STORE_UNAVAILABLE`: not applied, or `STORE_OUTCOME_UNKNOWN`).
   */
  async fencedWrite(operation: string, key: string, epoch: number, field: string, value: string): Promise<FencedWriteResult> {
    const reply = await this.run(operation, true, () => this.eval(SCRIPTS.fencedWrite, key, epoch, field, value));
    if (Array.isArray(reply) && reply[0] === 'OK') return { stale: false, storedEpoch: epoch };
    if (Array.isArray(reply) && reply[0] === 'STALE') return { stale: true, storedEpoch: Number(reply[1]) };
    throw new Error(`Redis answered the ${operation} with ${JSON.stringify(reply)}.`);
  }

  /**
   * Raise the epoch of `key` to `epoch` and read `fields`, unless the key holds a higher epoch
   * (see `FENCED_LOAD`): what an activation loads with, so that older activations can no
   * longer write.
   * @throws StoreUnavailableError (`STORE_UNAVAILABLE`, also when sent and not confirmed: raising
   * the fence changes no data, and a later activation raises it again).
   */
  async fencedLoad(operation: string, key: string, epoch: number, fields: readonly string[]): Promise<FencedLoadResult> {
    const reply = await this.run(operation, false, () => this.eval(SCRIPTS.fencedLoad, key, epoch, ...fields));
    if (Array.isArray(reply) && reply[0] === 'OK' && Array.isArray(reply[1])) return { stale: false, values: reply[1] as Array<string | null> };
    if (Array.isArray(reply) && reply[0] === 'STALE') return { stale: true, storedEpoch: Number(reply[1]) };
    throw new Error(`Redis answered the ${operation} with ${JSON.stringify(reply)}.`);
  }

  /** Run `script` on one key (KEYS[1]) with `args`. */
  private async eval(script: Script, key: string, ...args: Array<string | number>): Promise<unknown> {
    try {
      return await this.client.evalsha(script.sha, 1, key, ...args);
    } catch (error) {
      // Not loaded yet (or Redis restarted): NOSCRIPT did nothing, so EVAL is safe.
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return this.client.eval(script.source, 1, key, ...args);
    }
  }

  private async run<T>(operation: string, write: boolean, command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      // Never sent (no connection: no offline queue), or refused by the server before it ran.
      const notApplied = message.startsWith("Stream isn't writeable") || (error instanceof Error && error.name === 'ReplyError');
      throw new StoreUnavailableError(operation, write && !notApplied, message, { cause: error });
    }
  }
}
