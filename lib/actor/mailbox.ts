import { Call, CallPhase } from './call.js';
import { now } from './clock.js';
import type { DeadlineSweeper } from './deadline-sweeper.js';
import { runInTurn, turnStorage, type TurnState } from './turn.js';

/** What a mailbox needs from the process it serves. */
export interface MailboxHandler {
  /** May this call's turn start now? When not, the handler takes the call (and closes the mailbox). */
  admit(call: Call): boolean;
  /** Runs the call's turn (inside its AsyncLocalStorage context when the mailbox tracks turns with one). May return a promise. */
  invoke(call: Call): unknown;
  /** The turn settled; deliver `value` (or the error) to the caller. */
  onTurnSettled(call: Call, ok: boolean, value: unknown): void;
  /** The caller's deadline passed, while the call was queued (`running` false) or running. */
  onExpired(call: Call, running: boolean): void;
  /** A running turn outlived its caller's deadline by the hang bound. */
  onHung(call: Call): void;
}

const COMPACT_AT = 1024;
/**
 * `nextCheck` when nothing is due. NOTE: the mailbox's times are kept as whole ms below 2^30
 * (small integers V8 stores in the object itself); a fractional or infinite value would give
 * every mailbox a number box of its own. Past ~12 days of uptime they are ordinary numbers
 * again: sweeps then look at busy mailboxes every time, which is still correct.
 */
const NOTHING_DUE = 2 ** 30 - 1;
/** `nextCheck` for the earliest of some deadlines (Infinity: none). */
function dueAt(next: number): number {
  return next === Infinity ? NOTHING_DUE : Math.floor(next);
}
/** The queue of a mailbox with nothing waiting: shared, never written to. */
const NO_CALLS: Call[] = [];
/** How often a full queue is checked for calls that already have their answer. */
const COMPACT_EVERY_MS = 10;

function runTurn(handler: MailboxHandler, call: Call): unknown {
  return handler.invoke(call);
}

/** What the mailboxes of one kind share (one object, not four fields per mailbox). */
export interface MailboxSettings {
  readonly sweeper: DeadlineSweeper;
  /** Calls that may wait; `post` refuses more. */
  readonly maxQueued: number;
  /** How long a turn may run past its caller's deadline before `onHung`. */
  readonly hangAfterMs: number;
  /** Run turns inside `turnStorage` (else only their synchronous part is marked, `runInTurn`). */
  readonly asyncContext: boolean;
}

/**
 * A turn-based mailbox: one exclusive turn at a time; interleaved calls may run beside each
 * other but never beside an exclusive turn. Calls start in FIFO order. Bounded: `post`
 * refuses when `maxQueued` calls are already waiting.
 */
export class Mailbox {
  private queue: Call[] = NO_CALLS;
  private head = 0;
  private running = 0;
  private exclusive: Call | undefined = undefined;
  /** NOTE: no initializer (nor on `compactedAt`): set only by interleaved kinds (by full queues), so a mailbox has no room for it until then. */
  private interleavedRunning: Set<Call> | undefined;
  private draining = false;
  /** No turn starts while suspended (activation in progress, poisoned, stopped). */
  private suspended = true;
  /** Closed for good: nothing to watch any more, even if a hung turn never settles. */
  private closed = false;
  /** Earliest deadline (or hang bound) among pending and running calls; sweeps skip work before it. */
  private nextCheck = NOTHING_DUE;
  /** Registered with the sweeper (it drops us once `sweep` returns false). */
  private watched = false;
  /** When a full queue was last checked for settled calls (monotonic ms, whole). */
  private compactedAt: number | undefined;

  constructor(
    private readonly handler: MailboxHandler,
    /** Shared by the mailboxes of one kind on one member. */
    private readonly settings: MailboxSettings,
  ) {}

  /**
   * The turn running now when there is exactly one; `undefined` when none runs, or when
   * several interleaved turns do (then `several` is true).
   */
  soleTurn(): TurnState | undefined {
    if (this.exclusive !== undefined) return this.exclusive;
    const interleaved = this.interleavedRunning;
    if (interleaved === undefined || interleaved.size !== 1) return undefined;
    for (const call of interleaved) return call;
    return undefined;
  }

  /** More than one turn runs now (interleaved ones). */
  get several(): boolean {
    return this.running > 1;
  }

  /** Calls queued (some may have settled while waiting: they leave the queue at their turn). */
  get depth(): number {
    return this.queue.length - this.head;
  }

  get isIdle(): boolean {
    return this.running === 0 && this.queue.length === this.head;
  }

  /** Enqueue a call; false when the queue is full (the call is untouched). `force` skips the bound (runtime turns). */
  post(call: Call, force = false): boolean {
    if (!force && this.queue.length - this.head >= this.settings.maxQueued && this.waitingCount() >= this.settings.maxQueued) return false;
    this.watchDeadline(call);
    if (!this.suspended && !this.draining && this.head === this.queue.length && (call.interleaved ? this.exclusive === undefined : this.running === 0)) {
      // NOTE: the common case — nothing waiting, nothing in the way — starts at once, unqueued.
      this.start(call);
      return true;
    }
    if (this.queue === NO_CALLS) this.queue = [call];
    else this.queue.push(call);
    if (!this.suspended && !this.draining) this.drain();
    return true;
  }

  /**
   * Calls still waiting for their answer. NOTE: only counted when the queue looks full: calls
   * that expired or were aborted while queued stay in it until their turn would come, and must
   * not make a call that would wait behind nobody fail as overload. Dropping them here keeps
   * the count exact for the next posts too.
   */
  private waitingCount(): number {
    // NOTE: at most once per COMPACT_EVERY_MS while full, so a flood of calls to a full mailbox
    // does not cost a scan of the whole queue each.
    const at = now();
    if (this.compactedAt !== undefined && at - this.compactedAt < COMPACT_EVERY_MS) return this.queue.length - this.head;
    this.compactedAt = Math.floor(at);
    this.queue = this.unsettledQueued();
    this.head = 0;
    return this.queue.length;
  }

  /** The queued calls that have not started and whose callers still wait. */
  private unsettledQueued(): Call[] {
    return this.queue.slice(this.head).filter((c) => !c.settled);
  }

  private watchDeadline(call: Call): void {
    if (call.deadline < this.nextCheck) this.nextCheck = Math.floor(call.deadline);
    if (!this.watched) {
      this.watched = true;
      this.settings.sweeper.watch(this);
    }
  }

  /**
   * Start a call at once, outside the queue. Used for a re-entrant interleaved call whose own
   * chain holds an interleaved turn of this mailbox: queueing it behind a waiting exclusive
   * turn would deadlock.
   */
  startNow(call: Call): void {
    this.watchDeadline(call);
    this.start(call);
  }

  resume(): void {
    this.suspended = false;
    if (!this.draining) this.drain();
  }

  /**
   * Stop for good: no further turns, and no hang detection (a hung turn is abandoned). The
   * callers of turns still running keep their deadlines: sweeps go on until each has its
   * answer or its timeout.
   */
  close(): void {
    this.suspended = true;
    this.closed = true;
  }

  /** Remove and return every call that has not started (for redirecting or failing them). */
  takePending(): Call[] {
    const pending = this.unsettledQueued();
    this.queue = NO_CALLS;
    this.head = 0;
    return pending;
  }

  /**
   * Expire calls whose deadline passed and report hung turns. Returns false when the mailbox
   * has nothing left to watch.
   */
  sweep(at: number): boolean {
    if (this.closed) return this.sweepClosed(at);
    if (this.isIdle) {
      this.watched = false;
      return false;
    }
    if (at < this.nextCheck) return true;
    let next = Infinity;
    for (let i = this.head; i < this.queue.length; i++) {
      const call = this.queue[i]!;
      if (call.settled) continue;
      if (call.deadline <= at) this.handler.onExpired(call, false);
      else if (call.deadline < next) next = call.deadline;
    }
    next = Math.min(next, this.checkRunning(this.exclusive, at));
    if (this.interleavedRunning !== undefined) {
      for (const call of this.interleavedRunning) next = Math.min(next, this.checkRunning(call, at));
    }
    this.nextCheck = dueAt(next);
    return true;
  }

  /**
   * A closed mailbox runs nothing more, but a turn may still be running (a fenced, poisoned or
   * force-stopped activation): its caller still times out at its deadline. Each running call
   * is reported once its deadline passed, then no longer watched.
   */
  private sweepClosed(at: number): boolean {
    const running = this.unsettledRunning();
    if (running.length === 0) {
      this.watched = false;
      return false;
    }
    if (at < this.nextCheck) return true;
    let next = Infinity;
    for (const call of running) {
      if (call.deadline <= at) this.handler.onExpired(call, true);
      else if (call.deadline < next) next = call.deadline;
    }
    this.nextCheck = dueAt(next);
    if (next === Infinity) {
      this.watched = false;
      return false;
    }
    return true;
  }

  /** The running calls whose callers have no answer yet. */
  private unsettledRunning(): Call[] {
    const calls: Call[] = [];
    if (this.exclusive !== undefined && !this.exclusive.settled) calls.push(this.exclusive);
    if (this.interleavedRunning !== undefined) for (const call of this.interleavedRunning) if (!call.settled) calls.push(call);
    return calls;
  }

  private checkRunning(call: Call | undefined, at: number): number {
    if (call === undefined) return Infinity;
    if (call.deadline <= at && !call.settled) this.handler.onExpired(call, true);
    const hangAt = call.deadline + this.settings.hangAfterMs;
    if (hangAt <= at) {
      this.handler.onHung(call);
      return Infinity;
    }
    return call.settled ? hangAt : call.deadline;
  }

  private drain(): void {
    this.draining = true;
    try {
      while (!this.suspended && this.head < this.queue.length) {
        const call = this.queue[this.head]!;
        if (call.settled) {
          this.head++;
          continue;
        }
        if (call.interleaved) {
          if (this.exclusive !== undefined) break;
        } else if (this.running > 0) {
          break;
        }
        this.head++;
        this.start(call);
      }
      if (this.head === this.queue.length) {
        if (this.head !== 0) {
          this.queue = NO_CALLS;
          this.head = 0;
        }
      } else if (this.head >= COMPACT_AT && this.head * 2 >= this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
    } finally {
      this.draining = false;
    }
  }

  private start(call: Call): void {
    if (!this.handler.admit(call)) return;
    this.running++;
    if (call.interleaved) (this.interleavedRunning ??= new Set()).add(call);
    else this.exclusive = call;
    call.phase = CallPhase.Running;
    let result: unknown;
    try {
      result = this.settings.asyncContext ? turnStorage.run(call, runTurn, this.handler, call) : runInTurn(call, runTurn, this.handler, call);
    } catch (error) {
      this.finish(call, false, error);
      return;
    }
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      (result as PromiseLike<unknown>).then(
        (value) => this.finish(call, true, value),
        (error: unknown) => this.finish(call, false, error),
      );
    } else {
      this.finish(call, true, result);
    }
  }

  private finish(call: Call, ok: boolean, value: unknown): void {
    if (call.phase === CallPhase.Done) return;
    call.phase = CallPhase.Done;
    call.ended = true;
    this.running--;
    if (this.exclusive === call) this.exclusive = undefined;
    else this.interleavedRunning?.delete(call);
    this.handler.onTurnSettled(call, ok, value);
    call.detach();
    if (!this.draining) this.drain();
  }
}
