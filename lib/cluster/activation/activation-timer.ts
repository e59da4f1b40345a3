import type { Call } from '../../actor/call.js';
import type { GrainTimer } from '../grain-context.js';

/** What a timer needs of its activation. */
export interface TimerOwner {
  /** A runtime turn that runs `task` and reports its outcome to `done`. */
  taskCall(name: string, task: () => unknown, done: (ok: boolean, value: unknown) => void): Call;
  /** Queue a tick as a turn; false when the activation no longer runs turns. */
  postTick(tick: Call): boolean;
  forgetTimer(timer: ActivationTimer): void;
  logTimerError(error: unknown): void;
}

/**
 * A timer of one activation (`ctx.startTimer`): each tick runs as a turn of the activation,
 * never beside another turn. A tick still queued or running when the next is due is not
 * doubled up. Never keeps the process alive.
 */
export class ActivationTimer implements GrainTimer {
  private handle: NodeJS.Timeout | undefined;
  private tickPending = false;
  active = true;

  constructor(
    private readonly owner: TimerOwner,
    private readonly callback: () => unknown,
    dueMs: number,
    private readonly periodMs: number | undefined,
  ) {
    this.handle = setTimeout(() => this.fire(), dueMs);
    this.handle.unref();
  }

  stop(): void {
    if (!this.active) return;
    this.active = false;
    if (this.handle !== undefined) clearTimeout(this.handle);
    this.handle = undefined;
    this.owner.forgetTimer(this);
  }

  private fire(): void {
    this.handle = undefined;
    if (!this.active) return;
    if (this.periodMs !== undefined) {
      this.handle = setTimeout(() => this.fire(), this.periodMs);
      this.handle.unref();
    } else {
      this.active = false;
      this.owner.forgetTimer(this);
    }
    if (this.tickPending) return; // NOTE: a slow tick is not doubled up; the next one is skipped.
    this.tickPending = true;
    const tick = this.owner.taskCall('timer', this.callback, (ok, value) => {
      this.tickPending = false;
      if (!ok) this.owner.logTimerError(value);
    });
    if (!this.owner.postTick(tick)) {
      this.tickPending = false;
      this.stop();
    }
  }
}
