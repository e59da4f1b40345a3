import { performance } from 'node:perf_hooks';
import { type Summary, summarize } from './stats.js';

/** Monotonic nanoseconds. */
export function hrtimeNs(): bigint {
  return process.hrtime.bigint();
}

export function nsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start);
}

/** Monotonic nanoseconds as a number: `process.hrtime` is one clock for every process of the host, so these subtract across processes. */
export function hrNow(): number {
  return Number(process.hrtime.bigint());
}

/** Milliseconds from one `hrNow()` to another. */
export function msBetween(fromNs: number, toNs: number): number {
  return (toNs - fromNs) / 1e6;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Checks `done` every `everyMs` until it holds; resolves with the ms it waited. Bounded: throws `failure()` once `maxMs` have
 * passed without it.
 */
export async function pollUntil(done: () => boolean, maxMs: number, everyMs: number, failure: () => string): Promise<number> {
  const t0 = performance.now();
  while (!done()) {
    if (performance.now() - t0 > maxMs) throw new Error(failure());
    await sleep(everyMs);
  }
  return performance.now() - t0;
}

/** A full, synchronous GC when the process runs with --expose-gc (workers do); else nothing. */
export function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc === 'function') gc();
}

/** Keeps loop results alive so the optimiser cannot drop the measured work. */
export let sink: unknown = undefined;
export function consume(value: unknown): void {
  sink = value;
}

export interface MicroOptions {
  /** Iterations per round (the body runs its own loop of this many). */
  readonly iterations: number;
  readonly warmupRounds?: number;
  readonly rounds?: number;
}

/**
 * ns per iteration of `body(iterations)`, which must loop `iterations` times itself (so the
 * measured loop stays monomorphic) and return something derived from the work.
 */
export async function nsPerOp(body: (iterations: number) => unknown, options: MicroOptions): Promise<Summary> {
  const { iterations, warmupRounds = 3, rounds = 7 } = options;
  for (let r = 0; r < warmupRounds; r++) consume(await body(iterations));
  const perOp: number[] = [];
  for (let r = 0; r < rounds; r++) {
    collectGarbage();
    const start = hrtimeNs();
    consume(await body(iterations));
    perOp.push(nsSince(start) / iterations);
  }
  return summarize(perOp);
}

/** Let the event loop turn once (timers, I/O, IPC) between rounds. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
