import { Worker } from 'node:worker_threads';
import type { RedisOptions } from 'ioredis';
import { now } from '../../../actor/clock.js';
import type { LeaseSettings } from './redis-lookup-options.js';
import type { RedisScript } from './redis-scripts.js';

const hrtimeMs = () => Number(process.hrtime.bigint()) / 1e6;

/** Why a lease ended. */
export type LeaseEnd = 'lost' | 'generation';

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

  constructor(private readonly settings: LeaseSettings) {}

  /**
   * Start the renewer thread, which joins (creates the lease) once it is connected and then
   * renews it. Resolves to the join script's reply ('OK', 'GEN', 'TAKEN', or 'ERROR …').
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
        redisOptions: options.redis,
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
      worker.on('message', (message: { type: LeaseEnd | 'joined'; reply?: string }) => {
        if (message.type === 'joined') resolve(message.reply ?? '');
        else options.onEnd(message.type);
      });
      worker.on('error', (error) => {
        resolve(`ERROR ${error.message}`);
        options.onEnd('lost');
      });
    });
  }

  /** The lease holds for at least `aheadMs` more (monotonic ms, see clock.ts). */
  validFor(aheadMs: number, at = now()): boolean {
    return this.view[2] === 0 && at + this.offset + aheadMs < this.view[1]!;
  }

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
  }
}
