import { performance } from 'node:perf_hooks';

/**
 * Monotonic milliseconds. Every deadline in the runtime is expressed on this clock, so a
 * wall-clock jump (NTP, a VM resume) never fires or extends a deadline by itself.
 */
export function now(): number {
  return performance.now();
}
