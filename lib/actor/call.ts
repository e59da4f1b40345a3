import type { ChainLink, TurnState } from './turn.js';

/** Where a call is in its life. */
export const CallPhase = {
  /** Waiting for a turn (or for its activation to exist). */
  Pending: 0,
  /** Its turn is running. */
  Running: 1,
  /** Its turn has settled. */
  Done: 2,
} as const;
export type CallPhase = (typeof CallPhase)[keyof typeof CallPhase];

const NO_LINK: ChainLink = Object.freeze({ activationId: '', label: '', interleaved: false });
const NO_CHAIN: readonly ChainLink[] = Object.freeze([]);

/**
 * The settlers of the promise `new Promise(captureSettlers)` made last. NOTE: the executor
 * runs synchronously inside `new Promise`, so whoever makes the promise reads them right
 * after, then calls `releaseSettlers`; one shared function instead of a closure per call (the
 * grain call path makes one per call).
 */
export const settlers: { resolve: (value: unknown) => void; reject: (reason: unknown) => void } = { resolve: noop, reject: noop };

/** The executor that hands a new promise's settlers to `settlers`. */
export function captureSettlers(resolve: (value: unknown) => void, reject: (reason: unknown) => void): void {
  settlers.resolve = resolve;
  settlers.reject = reject;
}

/** Forget the settlers taken last, once read, so they do not keep that promise (and its value) alive. */
export function releaseSettlers(): void {
  settlers.resolve = noop;
  settlers.reject = noop;
}

/** Settlers of a call whose subclass answers its caller itself (`fulfil`, `fail`). */
export function noop(): void {}

/** Told how a call ended (telemetry: spans and durations); set on a call only while something records. */
export interface CallObserver {
  /** The call settled: `ok` with its result, or not with `reason`. Runs before the caller hears. */
  settled(call: Call, ok: boolean, reason: unknown): void;
}

/**
 * One grain call inside this process: its target, arguments, deadline and the caller's
 * promise. The same object is the AsyncLocalStorage store of the turn that runs it, so a
 * turn costs no extra allocation.
 */
export class Call implements TurnState {
  /** Set when the turn starts, to the activation's link. */
  link: ChainLink = NO_LINK;
  interleaved = false;
  /** Safe to run twice (retried when a remote outcome is unknown). */
  idempotent = false;
  /** Came from another member: served here or answered "not here", never forwarded. */
  inbound = false;
  ended = false;
  /** The caller has its answer (result, error or timeout); later outcomes are dropped. */
  settled = false;
  phase: CallPhase = CallPhase.Pending;
  /** How many times the call was sent again because its target was not there. */
  redirects = 0;
  /** A turn that is not a grain method (timers, lifecycle hooks). */
  task: (() => unknown) | undefined = undefined;
  /** What records the call's outcome (lib/observability); undefined unless an OpenTelemetry SDK records. */
  observer: CallObserver | undefined = undefined;
  private controller: AbortController | undefined = undefined;
  private callerSignal: AbortSignal | undefined = undefined;
  private onCallerAbort: (() => void) | undefined = undefined;

  constructor(
    readonly kind: string,
    readonly identity: string,
    /** `kind/identity`: the key of the grain on this member. */
    readonly key: string,
    readonly method: string,
    readonly args: readonly unknown[],
    /** Monotonic ms (see clock.ts). */
    readonly deadline: number,
    /** The timeout the deadline came from, for messages. */
    readonly timeoutMs: number,
    /** The turns that led to this call (cleared with `link` once its turn ended: see `detach`). */
    public chain: readonly ChainLink[],
    private readonly resolveFn: (value: unknown) => void,
    private readonly rejectFn: (reason: unknown) => void,
  ) {}

  /**
   * The turn ended: let go of the activations its link and chain name. NOTE: what a turn
   * created may keep its call for long (with AsyncLocalStorage, a timer or a pool made in the
   * turn keeps the turn's store); through these, it would keep deactivated activations and
   * their grains. An ended turn's chain is never read again (`chainOf`).
   */
  detach(): void {
    this.link = NO_LINK;
    this.chain = NO_CHAIN;
  }

  /** The signal a grain sees as `ctx.signal`; created on first use only. */
  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }

  /** Follow the caller's AbortSignal: `onAbort` runs once if it fires before the call settles. */
  watchCallerSignal(signal: AbortSignal, onAbort: () => void): void {
    this.callerSignal = signal;
    this.onCallerAbort = onAbort;
    signal.addEventListener('abort', onAbort, { once: true });
  }

  resolve(value: unknown): void {
    if (this.settled) return;
    this.settle();
    this.observer?.settled(this, true, undefined);
    this.fulfil(value);
  }

  reject(reason: unknown): void {
    if (this.settled) return;
    this.settle();
    this.controller?.abort(reason);
    this.observer?.settled(this, false, reason);
    this.fail(reason);
  }

  /** Hand the caller its result (once, after the call settled). */
  protected fulfil(value: unknown): void {
    this.resolveFn(value);
  }

  /** Hand the caller its error (once, after the call settled). */
  protected fail(reason: unknown): void {
    this.rejectFn(reason);
  }

  private settle(): void {
    this.settled = true;
    if (this.callerSignal !== undefined && this.onCallerAbort !== undefined) {
      this.callerSignal.removeEventListener('abort', this.onCallerAbort);
      this.callerSignal = undefined;
    }
  }
}
