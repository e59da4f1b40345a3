import type { Duration } from './duration.js';
import type { GrainClient } from './grain-client.interface.js';

/** A timer of one activation. Its callback runs as a turn of the activation. */
export interface GrainTimer {
  /** Stop the timer; a tick already queued still runs. */
  stop(): void;
  /** False once stopped, by `stop()` or by the activation's deactivation. */
  readonly active: boolean;
}

/** When a timer first fires, and how often after that. */
export interface GrainTimerOptions {
  /** First tick after this long. */
  due: Duration;
  /** Then every `period`; omit for a one-shot timer. */
  period?: Duration;
}

/**
 * What the runtime tells a grain about its activation. Inject it with
 * `@InjectGrainContext()`; one context per activation.
 */
export interface GrainContext {
  /** The kind name. */
  readonly kind: string;
  /** The grain's identity within its kind. */
  readonly identity: string;
  /** The member hosting this activation. */
  readonly memberId: string;
  /** Unique per activation: a re-activation of the same identity gets a new one. */
  readonly activationId: string;
  /**
   * Grows (by one or more) each time the identity is activated, and is never reused: the
   * fencing token for the grain's own external writes (store it with the data and refuse
   * writes that carry a smaller epoch).
   */
  readonly epoch: number;
  /**
   * Aborted when the current call's caller gives up (its deadline passed or it aborted).
   * Outside a call (constructor, hooks, timers) a signal that never aborts. With
   * `callChains: 'references'`, in an interleaved method read it before the first `await`
   * (`const signal = ctx.signal`): after one, while other interleaved turns run, the turn is
   * not known.
   */
  readonly signal: AbortSignal;
  /**
   * A client of `kind` for this grain's own calls. Its references carry this activation, so
   * with `callChains: 'references'` their calls after an `await` belong to the turn running on
   * it (call chains, cycle detection, a fenced activation's refusal), without AsyncLocalStorage.
   * The clients `@InjectGrainClient()` puts in a grain class are bound the same way. Keep its
   * references inside the grain. See `ClusterOptions.callChains`.
   */
  client<T>(kind: string): GrainClient<T>;
  /** Deactivate after the calls already queued: runs `onGrainDeactivate('requested')`. */
  deactivate(): void;
  /**
   * Run `callback` as a turn of this activation (never beside another turn). Ticks do not
   * keep the activation from idling; a tick still queued or running when the next is due
   * is not doubled. Timers stop when the activation deactivates.
   */
  startTimer(callback: () => unknown, options: GrainTimerOptions): GrainTimer;
}
