// @ts-check
/**
 * The lease renewer: runs on its own thread with its own Redis connection, so a member whose
 * event loop is busy keeps its lease, and renews only while the main thread has ticked
 * within the stall tolerance, so a stalled (or SIGSTOPped) member loses it.
 *
 * Shared memory (Float64Array over workerData.shared):
 *   [0] the main thread's last tick, [1] the lease's validity end, [2] state:
 *   0 held, 1 lost (renewal found the lease gone), 2 generation changed.
 * Times are milliseconds of process.hrtime (one monotonic clock for every thread).
 *
 * NOTE: plain JavaScript so the same file runs from lib/ under the tests and from dist/.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';

const { redisOptions, keys, args, leaseMs, renewIntervalMs, marginMs, stallToleranceMs, renew: renewScript, join: joinScript } = workerData;
const view = new Float64Array(workerData.shared);
const now = () => Number(process.hrtime.bigint()) / 1e6;

const redis = new Redis({
  ...redisOptions,
  // NOTE: a renewal must never sit in a queue and go out late: fail instead, and let the
  // lease run out if Redis stays unreachable.
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0,
  commandTimeout: leaseMs,
  lazyConnect: true,
});
redis.on('error', () => {});

/**
 * @param {{ sha: string, body: string }} script
 * @returns {Promise<unknown>}
 */
async function run(script) {
  try {
    return await redis.evalsha(script.sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return redis.eval(script.body, keys.length, ...keys, ...args);
  }
}

let inFlight = false;
let stopped = false;

/** @param {unknown} reply */
function settle(reply, /** @type {number} */ sentAt) {
  if (reply === 1) {
    // Late replies extend nothing: validity counts from the send time.
    const until = sentAt + leaseMs - marginMs;
    if (until > view[1]) view[1] = until;
  } else if (reply === 0) {
    view[2] = 1;
    parentPort?.postMessage({ type: 'lost' });
    stop();
  } else if (reply === 'GEN') {
    view[2] = 2;
    parentPort?.postMessage({ type: 'generation' });
    stop();
  }
}

async function renew() {
  if (stopped || inFlight) return;
  if (now() - view[0] > stallToleranceMs) return; // the main thread stalled: let the lease lapse
  inFlight = true;
  const sentAt = now();
  try {
    settle(await run(renewScript), sentAt);
  } catch {
    // Unreachable or slow: no renewal this time; the lease runs out on its own.
  } finally {
    inFlight = false;
  }
}

/** @type {NodeJS.Timeout | undefined} */
let timer;

// Join from here, so the lease starts only once this thread is up and connected: its
// first renewal is then never late because the thread was still starting.
(async () => {
  try {
    await redis.connect();
    const sentAt = now();
    const reply = await run(joinScript);
    if (reply === 'OK') {
      view[1] = sentAt + leaseMs - marginMs;
      view[2] = 0;
      timer = setInterval(() => void renew(), renewIntervalMs);
    } else {
      stop();
    }
    parentPort?.postMessage({ type: 'joined', reply: String(reply) });
  } catch (error) {
    stop();
    parentPort?.postMessage({ type: 'joined', reply: `ERROR ${error instanceof Error ? error.message : String(error)}` });
  }
})();

function stop() {
  if (stopped) return;
  stopped = true;
  clearInterval(timer);
  redis.disconnect();
}

parentPort?.on('message', (message) => {
  if (message === 'stop') {
    stop();
    parentPort?.close();
  }
});
