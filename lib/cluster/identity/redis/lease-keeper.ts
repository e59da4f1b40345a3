import { Worker } from 'node:worker_threads';
import type { RedisOptions } from 'ioredis';
import { now } from '../../../actor/clock.js';
import { GrainConfigurationError } from '../../errors.js';
import type { LeaseSettings } from './redis-lookup-options.js';
import type { RedisScript } from './redis-scripts.js';

const hrtimeMs = () => Number(process.hrtime.bigint()) / 1e6;

/** What `start` resolves to when `stop` came before the join answered. */
const JOIN_STOPPED = 'STOPPED';

/** Why a lease ended. */
export type LeaseEnd = 'lost' | 'generation';

/** ioredis options the renewer's connection does without: it never retries (lease-worker.js). */
const RECONNECTION_POLICIES = ['retryStrategy', 'reconnectOnError'] as const;

/**
 * ioredis options every lookup connection has, whatever the user's: replies as the scripts
 * give them (an integer stays a number). NOTE: ioredis' own `keyPrefix` is refused instead
 * (redis-connection.ts): it would prefix KEYS but not the keys a script builds from its
 * arguments (a lease key from an incarnation); the lookup's `keyPrefix` option is the way.
 */
export const LOOKUP_CONNECTION_OPTIONS = { stringNumbers: false } as const;

/**
 * The Redis options as the renewer thread gets them (a structured clone): the TLS and AUTH
 * options as given, without the caller's reconnection policies (functions, which no thread can
 * be passed). Throws GrainConfigurationError for any other option a thread cannot be passed (a
 * function such as `tls.checkServerIdentity`, a `tls.secureContext`), naming the option, never
 * its value.
 */
export function workerRedisOptions(options: RedisOptions): RedisOptions {
  const copy: Record<string, unknown> = { ...options, ...LOOKUP_CONNECTION_OPTIONS };
  for (const name of RECONNECTION_POLICIES) delete copy[name];
  const path = functionPath(copy, []);
  let cloneable = path === undefined;
  if (cloneable) {
    try {
      structuredClone(copy);
    } catch {
      cloneable = false;
    }
  }
  if (!cloneable) {
    throw new GrainConfigurationError(
      `RedisIdentityLookup redis options: ${path === undefined ? 'an option' : `"${path}"`} cannot be passed to the lease worker thread, which opens its own connection with the same options; use plain data (for TLS: ca, cert, key as strings or Buffers, servername, rejectUnauthorized, …), no functions or objects such as a secureContext.`,
    );
  }
  return copy as RedisOptions;
}

/** The path of the first function (or symbol) in `value`'s own properties, if any. */
function functionPath(value: unknown, path: string[]): string | undefined {
  if (typeof value === 'function' || typeof value === 'symbol') return path.join('.');
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value) || path.length > 8) return undefined;
  for (const [key, item] of Object.entries(value)) {
    const found = functionPath(item, [...path, key]);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * The main thread's side of a member lease: starts the renewer thread, ticks so the renewer
 * knows the event loop is alive, and answers "is the lease valid (for this much longer)?"
 * from shared memory, without a message or a Redis round trip.
 */
export class LeaseKeeper {
  private readonly shared = new SharedArrayBuffer(3 * Float64Array.BYTES_PER_ELEMENT);
  private readonly view = new Float64Array(this.shared);
  /** hrtime ms − performance.now() ms, both monotonic: converts the renewer's times. */
  private readonly offset = hrtimeMs() - now();
  private worker: Worker | undefined;
  private ticker: NodeJS.Timeout | undefined;
  /** Settles the pending `start`, while its join has not answered. */
  private settleJoin: ((reply: string) => void) | undefined;

  constructor(private readonly settings: LeaseSettings) {}

  /**
   * Start the renewer thread, which joins (creates the lease) once it is connected and then
   * renews it. Resolves to the join script's reply ('OK', 'GEN', 'TAKEN', 'EARLY:<ms>'), or
   * 'ERROR …' when the thread failed or exited first, or JOIN_STOPPED when `stop` came first:
   * it always settles. After the join, `onEnd` tells when the lease ended ('lost' also when
   * the thread died).
   */
  start(options: {
    redis: RedisOptions;
    join: RedisScript;
    renew: RedisScript;
    keys: string[];
    args: Array<string | number>;
    onEnd: (why: LeaseEnd) => void;
  }): Promise<string> {
    this.stop();
    const { leaseMs, marginMs, renewIntervalMs, stallToleranceMs } = this.settings;
    this.view[0] = hrtimeMs();
    this.view[1] = 0;
    this.view[2] = 1;
    this.ticker = setInterval(() => (this.view[0] = hrtimeMs()), Math.max(10, Math.min(100, Math.floor(stallToleranceMs / 5))));
    this.ticker.unref();
    const worker = new Worker(new URL('./lease-worker.js', import.meta.url), {
      workerData: {
        shared: this.shared,
        redisOptions: workerRedisOptions(options.redis),
        keys: options.keys,
        args: options.args,
        leaseMs,
        renewIntervalMs,
        marginMs,
        stallToleranceMs,
        join: { sha: options.join.sha, body: options.join.body },
        renew: { sha: options.renew.sha, body: options.renew.body },
      },
    });
    worker.unref();
    this.worker = worker;
    return new Promise<string>((resolve) => {
      let renewing = false;
      const settle = (reply: string) => {
        if (this.settleJoin === settle) this.settleJoin = undefined;
        resolve(reply);
      };
      this.settleJoin = settle;
      worker.on('message', (message: { type: LeaseEnd | 'joined'; reply?: string }) => {
        if (message.type === 'joined') {
          renewing = message.reply === 'OK';
          settle(message.reply ?? '');
        } else if (this.worker === worker) {
          options.onEnd(message.type);
        }
      });
      // NOTE: a thread that fails or exits must never leave its join waiting (the join would
      // never return, and the member never claim again), nor a lease it renewed unnoticed.
      const died = (why: string) => {
        settle(`ERROR ${why}`); // nothing, once the join answered
        if (renewing && this.worker === worker) {
          this.stop();
          options.onEnd('lost');
        }
      };
      worker.on('error', (error) => died(error.message));
      worker.on('exit', (code) => died(`the lease worker exited (code ${code})`));
    });
  }

  /** The lease holds for at least `aheadMs` more (monotonic ms, see clock.ts). */
  validFor(aheadMs: number, at = now()): boolean {
    return this.view[2] === 0 && at + this.offset + aheadMs < this.view[1]!;
  }

  /** Stop renewing: the lease is no longer valid here; a pending `start` settles with JOIN_STOPPED. */
  stop(): void {
    clearInterval(this.ticker);
    this.ticker = undefined;
    this.view[2] = 1;
    const worker = this.worker;
    this.worker = undefined;
    if (worker !== undefined) {
      worker.postMessage('stop');
      void worker.terminate();
    }
    this.settleJoin?.(JOIN_STOPPED);
  }
}
