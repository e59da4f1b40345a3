import { type Duration, toMs } from '../cluster/duration.js';
import type { GrainContext, GrainTimer, GrainTimerOptions } from '../cluster/grain-context.js';
import type { GrainClient } from '../cluster/grain-client.interface.js';

/** Options of `createGrainContext`; every field has a default. */
export interface FakeGrainContextOptions {
  /** @default 'test' */
  kind?: string;
  /** @default 'test' */
  identity?: string;
  /** @default 'test-member' */
  memberId?: string;
  /** @default `${memberId}:1` */
  activationId?: string;
  /** @default 1 */
  epoch?: number;
  /** The signal the grain sees as `ctx.signal`. @default one that `ctx.abort()` aborts */
  signal?: AbortSignal;
  /** What `ctx.client(kind)` returns, by kind (say fakes from `createFakeGrainClient`). @default none: `ctx.client()` throws, naming the kind */
  clients?: Readonly<Record<string, GrainClient<unknown>>>;
}

/**
 * A timer started through a `FakeGrainContext`. It never fires by itself: `fire()` runs one
 * tick now, `ctx.advance(duration)` runs the ticks that fall due in that much virtual time.
 */
export class FakeGrainTimer implements GrainTimer {
  /** The first tick's delay, in ms. */
  readonly dueMs: number;
  /** The delay between ticks, in ms; undefined for a one-shot timer. */
  readonly periodMs: number | undefined;
  /** Ticks run so far. */
  ticks = 0;
  /** When the next tick is due, in the context's virtual ms (see `FakeGrainContext.now`). */
  nextAt: number;
  #active = true;

  constructor(
    private readonly callback: () => unknown,
    options: GrainTimerOptions,
    startedAt: number,
  ) {
    // NOTE: the same checks as the runtime's startTimer: a bad duration throws here too.
    this.dueMs = toMs(options.due, 'startTimer due');
    this.periodMs = options.period === undefined ? undefined : toMs(options.period, 'startTimer period');
    this.nextAt = startedAt + this.dueMs;
  }

  /** False once stopped: by `stop()`, after a one-shot tick, or by the context's `deactivate()`. */
  get active(): boolean {
    return this.#active;
  }

  /** Stop the timer: no more ticks. */
  stop(): void {
    this.#active = false;
  }

  /**
   * Run one tick now, as the runtime would when it falls due: a one-shot timer stops first.
   * Resolves once the callback has settled; rejects with what it threw (the runtime would
   * log it). Throws when the timer is stopped: a stopped timer never ticks.
   */
  async fire(): Promise<void> {
    if (!this.#active) throw new Error('FakeGrainTimer.fire(): the timer is stopped, and a stopped timer never ticks.');
    if (this.periodMs === undefined) this.#active = false;
    else this.nextAt += this.periodMs;
    this.ticks++;
    await this.callback();
  }
}

/**
 * A `GrainContext` for testing a grain class alone, without a cluster: pass it to the grain's
 * constructor. It records what the grain asks of its activation (`deactivate()`, timers) and
 * lets the test drive time and cancellation. The grain's hooks are not called for you: call
 * `onGrainActivate()` / `onGrainDeactivate()` yourself when the test needs them.
 */
export class FakeGrainContext implements GrainContext {
  readonly kind: string;
  readonly identity: string;
  readonly memberId: string;
  readonly activationId: string;
  readonly epoch: number;
  readonly signal: AbortSignal;
  /** How many times the grain called `deactivate()`. */
  deactivations = 0;
  /** Every timer the grain started, in order (stopped ones included). */
  readonly timers: FakeGrainTimer[] = [];
  /** Virtual time, in ms since the context was made; moved by `advance()`. */
  now = 0;
  readonly #controller = new AbortController();
  readonly #clients: Readonly<Record<string, GrainClient<unknown>>>;

  constructor(options: FakeGrainContextOptions = {}) {
    this.#clients = options.clients ?? {};
    this.kind = options.kind ?? 'test';
    this.identity = options.identity ?? 'test';
    this.memberId = options.memberId ?? 'test-member';
    this.activationId = options.activationId ?? `${this.memberId}:1`;
    this.epoch = options.epoch ?? 1;
    this.signal = options.signal ?? this.#controller.signal;
  }

  /** True once the grain asked to be deactivated. */
  get deactivated(): boolean {
    return this.deactivations > 0;
  }

  /** The timers still running. */
  get activeTimers(): FakeGrainTimer[] {
    return this.timers.filter((t) => t.active);
  }

  /** The client given for `kind` in `options.clients`. */
  client<T>(kind: string): GrainClient<T> {
    const client = Object.hasOwn(this.#clients, kind) ? this.#clients[kind] : undefined;
    if (client === undefined) {
      throw new Error(
        `FakeGrainContext.client('${kind}'): no client for this kind; pass one in createGrainContext({ clients: { '${kind}': createFakeGrainClient(...) } }).`,
      );
    }
    return client as GrainClient<T>;
  }

  /** Recorded; and, as in the runtime, the activation's timers stop (and later ones start stopped). */
  deactivate(): void {
    this.deactivations++;
    for (const timer of this.timers) timer.stop();
  }

  /** Recorded in `timers`; it ticks only when the test says (`advance()`, `timer.fire()`). */
  startTimer(callback: () => unknown, options: GrainTimerOptions): FakeGrainTimer {
    const timer = new FakeGrainTimer(callback, options, this.now);
    if (this.deactivated) timer.stop();
    this.timers.push(timer);
    return timer;
  }

  /**
   * Move virtual time on by `duration`, running each tick that falls due, in time order, one
   * at a time (each awaited, as turns never overlap). Rejects with the first callback error.
   */
  async advance(duration: Duration): Promise<void> {
    const until = this.now + toMs(duration, 'advance', { allowZero: true });
    for (;;) {
      let next: FakeGrainTimer | undefined;
      for (const timer of this.timers) if (timer.active && timer.nextAt <= until && (next === undefined || timer.nextAt < next.nextAt)) next = timer;
      if (next === undefined) break;
      this.now = next.nextAt;
      await next.fire();
    }
    this.now = until;
  }

  /** Abort `signal`, as when the caller of the current call gives up (deadline passed, or aborted). Only the default signal. */
  abort(reason?: unknown): void {
    this.#controller.abort(reason);
  }
}

/**
 * A fake `GrainContext` for unit tests of a grain class: `new AccountGrain(store,
 * createGrainContext({ identity: 'a1' }))`. Records `deactivate()` and the timers the grain
 * starts; `advance('1m')` runs the timer ticks due; `abort()` aborts `ctx.signal`.
 */
export function createGrainContext(options?: FakeGrainContextOptions): FakeGrainContext {
  return new FakeGrainContext(options);
}
