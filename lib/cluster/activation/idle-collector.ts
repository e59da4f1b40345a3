import { now } from '../../actor/clock.js';
import type { Activation } from './activation.js';

/** Bounds for how often idle activations are looked for. */
const MIN_SCAN_INTERVAL_MS = 10;
const MAX_SCAN_INTERVAL_MS = 10_000;

/**
 * Deactivates activations that had no call for their kind's idle timeout. One scan over
 * the member's activations every quarter of the shortest idle timeout (within bounds), so
 * an activation goes at most that much later than its timeout; no timer per activation.
 */
export class IdleCollector {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly activations: () => Iterable<Activation>,
    private readonly shortestIdleMs: () => number,
  ) {}

  start(): void {
    this.stop();
    const interval = Math.min(MAX_SCAN_INTERVAL_MS, Math.max(MIN_SCAN_INTERVAL_MS, Math.floor(this.shortestIdleMs() / 4)));
    this.timer = setInterval(() => this.scan(), interval);
    this.timer.unref();
  }

  scan(): void {
    const at = now();
    for (const activation of this.activations()) {
      if (activation.isIdleAt(at)) void activation.deactivate('idle');
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
