import { Call } from '../../actor/call.js';
import { now } from '../../actor/clock.js';
import type { DeadlineSweeper } from '../../actor/deadline-sweeper.js';
import { Mailbox, type MailboxHandler, type MailboxSettings } from '../../actor/mailbox.js';
import type { Pid } from '../../actor/pid.js';
import { type ChainLink, EMPTY_CHAIN, synchronousTurn, type TurnSource, type TurnState, turnStorage } from '../../actor/turn.js';
import type { WaitingCalls } from '../../actor/waiting-calls.js';
import { CallObservation, runUntraced } from '../../observability/call-telemetry.js';
import { toMs } from '../duration.js';
import { CallCycleError, GrainActivationError, GrainOverloadedError, GrainTimeoutError, toInvocationError } from '../errors.js';
import type { Fencing } from '../fencing.js';
import type { GrainContext, GrainTimer, GrainTimerOptions } from '../grain-context.js';
import type { GrainClient } from '../grain-client.interface.js';
import type { KindClient } from '../kind-client.js';
import type { ClusterKind, DeactivationReason } from '../kind.js';
import type { ClusterLogger } from '../logger.js';
import { ActivationContext } from './activation-context.js';
import { ActivationTimer, type TimerOwner } from './activation-timer.js';

/** What an activation needs from the member hosting it. */
export interface ActivationHost {
  readonly memberId: string;
  readonly sweeper: DeadlineSweeper;
  readonly logger: ClusterLogger;
  readonly hangTimeoutMs: number;
  /** The activation's deadline for its own hook and timer turns. */
  readonly requestTimeoutMs: number;
  /** Send a call that never ran here to wherever its grain is now. */
  redirect(call: Call): void;
  /** Every fencing check (fencing.ts). */
  readonly fencing: Fencing;
  /** Where calls parked outside the mailbox keep their deadlines. */
  readonly waiting: WaitingCalls;
  /** A new activation id, unique in the cluster. */
  newActivationId(): string;
  /** A number for a new activation, unique for this member; `activationIdOf` makes its id. */
  nextActivationNumber(): number;
  /** The id of activation `number` of `incarnation` (what `newActivationId` would have said). */
  activationIdOf(incarnation: string, number: number): string;
  /** What the mailboxes of `kind` share. */
  mailboxSettings(kind: ClusterKind): MailboxSettings;
  /** The activation is gone: forget it (and release its claim unless it was fenced). */
  onStopped(activation: Activation, how: StopKind): void;
  /** Calls delivered to this member's activations since start (for the gossiped heartbeat's calls/s). */
  delivered: number;
  /** Turns run inside `turnStorage` (`callChains` resolved to 'async-local-storage'). */
  readonly asyncContext: boolean;
  /** This member's client of `kind` (what `ctx.client(kind)` binds to the activation). */
  clientOf(kind: string): KindClient<unknown>;
}

/** How an activation ended. */
export type StopKind = 'stopped' | 'poisoned' | 'fenced';

const State = { Activating: 0, Active: 1, Deactivating: 2, Stopped: 3, Poisoned: 4, Fenced: 5 } as const;
type State = (typeof State)[keyof typeof State];
/** The states an activation ends in. */
type EndState = typeof State.Stopped | typeof State.Poisoned | typeof State.Fenced;

const NEVER_ABORTED = new AbortController().signal;

type MutableLink = { -readonly [K in keyof ChainLink]: ChainLink[K] };
/**
 * One live instance of a grain: its mailbox, its lifecycle and its timers.
 *
 * Every way an activation ends without its deactivation hook (forced stop, poisoning,
 * fencing, a failed activation) goes through `end()`: the mailbox closes, calls that never
 * ran are taken out and each settled one way (failed, or sent on), and the host forgets it.
 */
export class Activation implements MailboxHandler, TimerOwner, TurnSource, ChainLink {
  readonly mailbox: Mailbox;
  readonly context: GrainContext;
  /** Monotonic ms of the last call posted, whole (a small integer: no number box per activation); the idle collector compares against it. */
  lastActivity = Math.floor(now());
  private state: State = State.Activating;
  private instance: Record<string, unknown> | undefined;
  /**
   * Set when the activation ends without its hook (fencing.ts): the code of its turns may call
   * nothing. NOTE: the fields that most activations never set have no initializer (here and
   * below), so they take no room until they are set.
   */
  fenced?: boolean;
  /** The id, once made (see `id`). */
  private idValue: string | undefined;
  /** Which activation of this member it is, for its id. */
  private readonly number: number;
  /** The link of its interleaved turns, made on the first one (most kinds have none). */
  private interleavedTurns: MutableLink | undefined;
  /** The member incarnation that created (and claimed) this activation. */
  readonly incarnation: string;
  /** Calls that arrived while deactivating: redirected once the activation is gone. */
  private parked: Call[] | undefined;
  private timers: Set<ActivationTimer> | undefined;
  private deactivation: Promise<void> | undefined;
  /** Why the activation could not be created, for callers that arrive after. */
  private failure: GrainActivationError | undefined;

  constructor(
    readonly kind: ClusterKind,
    readonly identity: string,
    readonly epoch: number,
    private readonly host: ActivationHost,
    activationId: string | undefined,
    incarnation: string,
    /** `kind/identity`: the member's key of the grain (the registry's string, not a copy). */
    readonly label: string,
  ) {
    this.incarnation = incarnation;
    this.idValue = activationId;
    this.number = activationId === undefined ? host.nextActivationNumber() : 0;
    this.mailbox = new Mailbox(this, host.mailboxSettings(kind));
    this.context = new ActivationContext(this);
  }

  /**
   * Unique in the cluster. NOTE: made on first read (a call chain through the activation, a
   * Redis claim, a log line), so an activation that is only ever called from outside any grain
   * carries no id string.
   */
  get id(): string {
    return (this.idValue ??= this.host.activationIdOf(this.incarnation, this.number));
  }

  get memberId(): string {
    return this.host.memberId;
  }

  /**
   * Its address, as a plain record (a lookup may copy it): made when asked for (a lookup's
   * activation, a release), its `id` read only when read.
   */
  toPid(): Pid {
    // NOTE: a literal with a getter is made by the runtime, closure and accessor included, for
    // every Pid; when the id exists already (a claim chose it) a plain record is much cheaper.
    const id = this.idValue;
    if (id !== undefined) return { memberId: this.memberId, incarnation: this.incarnation, process: this, id };
    const activation = this;
    return {
      memberId: this.memberId,
      incarnation: this.incarnation,
      process: this,
      get id(): string {
        return activation.id;
      },
    };
  }

  // ChainLink: an activation is the link of its exclusive turns (call.link).

  get activationId(): string {
    return this.id;
  }

  get interleaved(): boolean {
    return false;
  }

  /** The link of this activation's interleaved turns (fenced when the activation is). */
  private get interleavedLink(): MutableLink {
    return (this.interleavedTurns ??= { activationId: this.id, label: this.label, interleaved: true, fenced: this.fenced === true });
  }

  /** Idle: active, nothing queued or running, and no call for `idleTimeoutMs`. */
  isIdleAt(at: number): boolean {
    return this.state === State.Active && this.mailbox.isIdle && at - this.lastActivity >= this.kind.idleTimeoutMs;
  }

  /** Queue the activation turn (constructor + `onGrainActivate`) ahead of every call. */
  start(): void {
    const activate = this.taskCall(
      'onGrainActivate',
      () => this.construct(),
      (ok, value) => this.onActivated(ok, value),
    );
    this.mailbox.post(activate);
    this.mailbox.resume();
  }

  /** Deliver a call to this activation. `at` is the caller's monotonic send time. */
  post(call: Call, at: number): void {
    this.host.delivered++;
    switch (this.state) {
      case State.Deactivating:
        (this.parked ??= []).push(call);
        this.host.waiting.add(call);
        return;
      case State.Stopped:
        // NOTE: callers that reach an activation which failed to start share its failure;
        // sending them on would start (and fail) one activation per waiting caller.
        if (this.failure !== undefined) call.reject(this.failure);
        else this.host.redirect(call);
        return;
      case State.Poisoned:
      case State.Fenced:
        this.host.redirect(call);
        return;
    }
    const chain = call.chain;
    for (let i = 0; i < chain.length; i++) {
      const link = chain[i]!;
      // NOTE: a local link is this very object; one from another member is compared by id, and
      // only when the id was ever made (an id never made was never sent, so no chain holds it).
      if (link !== this && link !== this.interleavedTurns && (this.idValue === undefined || link.activationId !== this.idValue)) continue;
      if (link.interleaved && call.interleaved) {
        // Re-entrant read: the chain holds an interleaved turn here, which never blocks it.
        call.link = this.interleavedLink;
        this.lastActivity = Math.floor(at);
        this.mailbox.startNow(call);
        return;
      }
      call.reject(new CallCycleError([...chain.slice(i).map((l) => l.label), this.label]));
      return;
    }
    call.link = call.interleaved ? this.interleavedLink : this;
    this.lastActivity = Math.floor(at);
    if (!this.mailbox.post(call)) call.reject(new GrainOverloadedError(this.kind.name, this.identity, this.kind.maxQueueLength));
  }

  /**
   * Deactivate gracefully: stop taking calls, run what is queued, run `onGrainDeactivate`,
   * then forget the activation; calls that arrived meanwhile go to a fresh activation.
   */
  deactivate(reason: DeactivationReason): Promise<void> {
    if (this.deactivation !== undefined) return this.deactivation;
    if (this.isGone) return Promise.resolve();
    this.state = State.Deactivating;
    this.stopTimers();
    this.deactivation = new Promise<void>((resolve) => {
      const hook = this.taskCall(
        'onGrainDeactivate',
        () => this.runDeactivateHook(reason),
        (ok, value) => {
          // NOTE: not logged when forceStop() already ended the activation and failed the hook's turn.
          if (!ok && this.state === State.Deactivating)
            this.host.logger.error(`Grain ${this.label}: onGrainDeactivate('${reason}') threw: ${describe(value)}`, stackOf(value));
          this.stop(State.Stopped);
          resolve();
        },
      );
      this.mailbox.post(hook, true);
    });
    return this.deactivation;
  }

  /**
   * End now without hooks (shutdown past its drain timeout): calls that never ran go
   * wherever the grain is next (another member, when there is one; else they get
   * ClusterShuttingDownError); timer ticks are dropped.
   */
  forceStop(): void {
    this.end(State.Stopped, this.sendOnOrFail('activation stopped at shutdown'));
  }

  /**
   * The claim under which this activation runs is no longer this member's (lease lost, or
   * no room left on it for a turn): no further turns, hooks or timers; replies of turns still
   * running are dropped; calls that never ran go wherever the grain is next.
   */
  fence(reason: string, log = true): void {
    if (this.isGone) return;
    if (log) this.host.logger.warn(`Grain ${this.label} (activation ${this.id}) is fenced: ${reason}. It runs no more turns; calls go to a fresh activation.`);
    this.end(State.Fenced, this.sendOnOrFail('activation fenced'));
  }

  private get isGone(): boolean {
    return this.state === State.Stopped || this.state === State.Poisoned || this.state === State.Fenced;
  }

  // MailboxHandler ---------------------------------------------------------------------------

  admit(call: Call): boolean {
    if (this.host.fencing.canStartTurn()) return true;
    // NOTE: not started, so provably not run: it goes on to wherever the grain is next.
    this.fence('its member lease has too little time left to start a turn');
    this.sendOnOrFail('activation fenced')(call);
    return false;
  }

  invoke(call: Call): unknown {
    // NOTE: a task turn (a timer tick, a lifecycle hook) belongs to no call: it runs outside
    // any trace, whatever context armed it (a timer started in a traced turn would otherwise
    // put every tick's calls into that long-ended trace).
    if (call.task !== undefined) return runUntraced(call.task);
    const instance = this.instance!;
    const method = instance[call.method] as (...args: unknown[]) => unknown;
    // NOTE: a traced call's turn runs in its SERVER span's context: the calls it makes, and spans the grain makes, are its children.
    const observation = call.observer;
    if (observation !== undefined && observation instanceof CallObservation) return observation.run(method, instance, call.args);
    return method.apply(instance, call.args as unknown[]);
  }

  onTurnSettled(call: Call, ok: boolean, value: unknown): void {
    const fencing = this.host.fencing;
    if (call.task === undefined && fencing.leased && (this.state === State.Fenced || !fencing.canSettleTurn())) {
      // NOTE: the turn ended outside the lease: another activation may exist by now, so the
      // reply cannot be vouched for.
      call.reject(fencing.replyAfterLapse(call.kind, call.identity, call.method));
      this.fence('its member lease ended during a turn');
      return;
    }
    if (ok) call.resolve(value);
    else if (call.task !== undefined) call.reject(value);
    else call.reject(toInvocationError(call.kind, call.identity, call.method, value));
  }

  onExpired(call: Call, running: boolean): void {
    if (call.task !== undefined) return;
    call.reject(new GrainTimeoutError(call.kind, call.identity, call.method, call.timeoutMs, !running));
  }

  onHung(call: Call): void {
    if (this.isGone) return;
    const what = call.task !== undefined ? call.method : `${call.method}()`;
    this.host.logger.warn(
      `Grain ${this.label} (activation ${this.id}) is poisoned: ${what} was still running ${this.host.hangTimeoutMs} ms after its caller's deadline. ` +
        'It takes no more turns and is dropped without hooks; the next call gets a fresh activation.',
    );
    this.end(State.Poisoned, this.sendOnOrFail('activation poisoned'));
    // A hung hook or timer turn is given up on, so whoever waits for it (shutdown) goes on.
    if (call.task !== undefined) call.reject(new Error(`${call.method} hung`));
  }

  // Internals --------------------------------------------------------------------------------

  private construct(): unknown {
    const instance = this.kind.definition.create(this.context) as Record<string, unknown>;
    this.instance = instance;
    const hook = instance['onGrainActivate'];
    return typeof hook === 'function' ? (hook as () => unknown).call(instance) : undefined;
  }

  private onActivated(ok: boolean, value: unknown): void {
    if (ok) {
      if (this.state === State.Activating) this.state = State.Active;
      return;
    }
    // NOTE: no half-made activation: nothing queued runs, timers started by the hook stop,
    // and the activation is forgotten before any caller hears of the failure.
    const error = new GrainActivationError(this.kind.name, this.identity, describe(value), { cause: value });
    this.failure = error;
    this.end(State.Stopped, (call) => call.reject(error));
  }

  private runDeactivateHook(reason: DeactivationReason): unknown {
    const instance = this.instance;
    if (instance === undefined) return undefined;
    const hook = instance['onGrainDeactivate'];
    return typeof hook === 'function' ? (hook as (r: DeactivationReason) => unknown).call(instance, reason) : undefined;
  }

  /**
   * The end of life without hooks: no further turns; calls that never ran are taken out and
   * handed to `settlePending`; the host forgets the activation.
   */
  private end(state: EndState, settlePending: (call: Call) => void): void {
    if (this.isGone) return;
    // NOTE: a turn may still be running (hung, or cut off by the fence); its claim is released
    // or no longer this member's, so it must not act as the grain any more: no outgoing calls.
    this.host.fencing.fence(this.interleavedTurns === undefined ? [this] : [this, this.interleavedTurns]);
    this.mailbox.close();
    const pending = this.mailbox.takePending();
    this.stop(state);
    for (const call of pending) settlePending(call);
  }

  /** Send grain calls on to wherever the grain is next (they never ran); fail runtime turns. */
  private sendOnOrFail(why: string): (call: Call) => void {
    return (call) => {
      if (call.task !== undefined) call.reject(new Error(why));
      else this.host.redirect(call);
    };
  }

  private stop(state: EndState): void {
    if (this.isGone) return;
    this.state = state;
    this.mailbox.close();
    this.stopTimers();
    this.host.onStopped(this, state === State.Poisoned ? 'poisoned' : state === State.Fenced ? 'fenced' : 'stopped');
    const parked = this.parked;
    this.parked = undefined;
    if (parked !== undefined) {
      for (const call of parked) {
        this.host.waiting.delete(call);
        this.host.redirect(call);
      }
    }
  }

  private stopTimers(): void {
    const timers = this.timers;
    this.timers = undefined;
    if (timers !== undefined) for (const timer of timers) timer.stop();
  }

  /** A turn of the runtime's own (hook or timer tick), with its outcome reported to `done`. */
  taskCall(name: string, task: () => unknown, done: (ok: boolean, value: unknown) => void): Call {
    // NOTE: the kind's own requestTimeout bounds its hooks and timer ticks too (a kind whose work is slow says so once).
    const timeoutMs = this.kind.requestTimeoutMs ?? this.host.requestTimeoutMs;
    const call = new Call(
      this.kind.name,
      this.identity,
      this.label,
      name,
      [],
      now() + timeoutMs,
      timeoutMs,
      [],
      (value) => done(true, value),
      (error) => done(false, error),
    );
    call.task = task;
    call.link = this;
    return call;
  }

  /**
   * The turn that code calling through this activation's own references after an `await`
   * (outside any turn's synchronous part) is taken to run in, with no async context to say:
   * the one turn running here. While several interleaved turns run, a turn of this activation
   * with no chain before it: calls still carry the activation itself (a call back to it is a
   * cycle), not the callers of one of those turns, which cannot be told apart.
   *
   * NOTE: a guess. Code that outlived its turn (a `setTimeout` callback, a detached promise)
   * or holds a reference another grain handed it is taken for the turn running here now;
   * README "Call chains" says so.
   */
  currentTurn(): TurnState | undefined {
    // NOTE: an ended (fenced, poisoned) activation's code may call nothing through its references, in a turn or not.
    if (this.fenced === true) return { chain: EMPTY_CHAIN, link: this, ended: false };
    const sync = synchronousTurn();
    if (sync !== undefined && this.owns(sync.link)) return sync;
    const sole = this.mailbox.soleTurn();
    if (sole !== undefined || !this.mailbox.several) return sole;
    return { chain: EMPTY_CHAIN, link: this.interleavedLink, ended: false };
  }

  /** This member's client of `kind`, its references carrying this activation (the context's `client`). */
  client<T>(kind: string): GrainClient<T> {
    return (this.host.clientOf(kind) as KindClient<T>).boundTo(this);
  }

  /** Used by the context. */
  currentSignal(): AbortSignal {
    const turn = this.host.asyncContext ? turnStorage.getStore() : this.currentTurn();
    if (turn instanceof Call && this.owns(turn.link) && !turn.ended && turn.task === undefined) return turn.signal;
    return NEVER_ABORTED;
  }

  /** Is `link` one of this activation's own (a turn here has it)? */
  private owns(link: ChainLink): boolean {
    return link === this || (link === this.interleavedTurns && link !== undefined);
  }

  startTimer(callback: () => unknown, options: GrainTimerOptions): GrainTimer {
    const timer = new ActivationTimer(
      this,
      callback,
      toMs(options.due, 'startTimer due'),
      options.period === undefined ? undefined : toMs(options.period, 'startTimer period'),
    );
    if (this.state === State.Activating || this.state === State.Active) (this.timers ??= new Set()).add(timer);
    else timer.stop();
    return timer;
  }

  forgetTimer(timer: ActivationTimer): void {
    this.timers?.delete(timer);
  }

  /** A timer tick: queued as a turn, unless the activation no longer runs turns. */
  postTick(tick: Call): boolean {
    if (this.state !== State.Active && this.state !== State.Activating) return false;
    return this.mailbox.post(tick, true);
  }

  logTimerError(error: unknown): void {
    this.host.logger.error(`Grain ${this.label}: timer callback threw: ${describe(error)}`, stackOf(error));
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function stackOf(error: unknown): string | undefined {
  return error instanceof Error ? error.stack : undefined;
}
