import { randomUUID } from 'node:crypto';
import { Call, CallPhase } from '../actor/call.js';
import { now } from '../actor/clock.js';
import { DeadlineSweeper } from '../actor/deadline-sweeper.js';
import type { Pid } from '../actor/pid.js';
import { outgoingChain } from '../actor/turn.js';
import { Activation, type ActivationHost } from './activation.js';
import {
  type ClusterOptions,
  DEFAULT_DRAIN_TIMEOUT,
  DEFAULT_HANG_TIMEOUT,
  DEFAULT_IDLE_TIMEOUT,
  DEFAULT_MAX_QUEUE_LENGTH,
  DEFAULT_REQUEST_TIMEOUT,
} from './cluster-options.js';
import { toMs } from './duration.js';
import {
  ClusterShuttingDownError,
  ClusterUnavailableError,
  GrainCallAbortedError,
  GrainConfigurationError,
  GrainError,
  GrainTimeoutError,
  InvalidGrainCallError,
  MethodNotCallableError,
  UnknownKindError,
} from './errors.js';
import type { GrainCallOptions, GrainClient } from './grain-client.js';
import { type GrainInvoker, KindClient } from './grain-ref.js';
import type { IdentityLookup, LookupMember } from './identity/identity-lookup.js';
import { InMemoryIdentityLookup } from './identity/in-memory-identity-lookup.js';
import { IdleCollector } from './idle-collector.js';
import { ClusterKind, type KindDefinition, type MethodRoute } from './kind.js';
import { type ClusterLogger, consoleLogger } from './logger.js';
import type { ClusterProvider, Member } from './providers/cluster-provider.js';
import { InMemoryProvider } from './providers/in-memory-provider.js';

/** A call that never ran is sent on at most this often (each time its activation was gone). */
const MAX_REDIRECTS = 32;

const State = { Created: 0, Running: 1, Stopping: 2, Stopped: 3 } as const;
type State = (typeof State)[keyof typeof State];

/** Counters for health and tests. */
export interface ClusterStats {
  /** Activations alive on this member now. */
  readonly activations: number;
  /** Activations created on this member since start. */
  readonly activated: number;
  /** Activations that ended (deactivated, failed or poisoned) since start. */
  readonly deactivated: number;
  /** Activations poisoned by a hung turn since start. */
  readonly poisoned: number;
}

/**
 * One member of a grain cluster: hosts kinds, routes calls to activations, owns their
 * lifecycle. Framework-free; the Nest module is a thin adapter over it.
 */
export class Cluster implements GrainInvoker, ActivationHost, LookupMember {
  readonly clusterName: string;
  readonly memberId: string;
  readonly provider: ClusterProvider;
  readonly identityLookup: IdentityLookup;
  readonly logger: ClusterLogger;
  readonly sweeper = new DeadlineSweeper();
  readonly requestTimeoutMs: number;
  readonly hangTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly maxQueueLength: number;
  private readonly drainTimeoutMs: number;
  private readonly kinds = new Map<string, ClusterKind>();
  /** The local activations by `kind/identity`: this member's process registry for grains. */
  private readonly activations = new Map<string, Activation>();
  /** Calls waiting for a lookup in progress, by `kind/identity`. */
  private readonly lookups = new Map<string, Call[]>();
  private readonly idleCollector: IdleCollector;
  private state: State = State.Created;
  private stopping: Promise<void> | undefined;
  private counters = { activated: 0, deactivated: 0, poisoned: 0 };

  constructor(options: ClusterOptions) {
    if (typeof options.clusterName !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(options.clusterName)) {
      throw new GrainConfigurationError(`clusterName "${String(options.clusterName)}" is not valid; use letters, digits, ".", "_" and "-".`);
    }
    this.clusterName = options.clusterName;
    this.memberId = options.memberId ?? randomUUID();
    this.provider = options.provider ?? new InMemoryProvider();
    this.identityLookup = options.identityLookup ?? new InMemoryIdentityLookup();
    this.logger = options.logger ?? consoleLogger;
    this.requestTimeoutMs = toMs(options.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT, 'requestTimeout');
    this.idleTimeoutMs = toMs(options.idleTimeout ?? DEFAULT_IDLE_TIMEOUT, 'idleTimeout');
    this.hangTimeoutMs = toMs(options.hangTimeout ?? DEFAULT_HANG_TIMEOUT, 'hangTimeout');
    this.drainTimeoutMs = toMs(options.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT, 'drainTimeout');
    this.maxQueueLength = options.maxQueueLength ?? DEFAULT_MAX_QUEUE_LENGTH;
    if (!Number.isInteger(this.maxQueueLength) || this.maxQueueLength < 1) {
      throw new GrainConfigurationError('maxQueueLength must be a positive integer.');
    }
    this.idleCollector = new IdleCollector(
      () => this.activations.values(),
      () => Math.min(this.idleTimeoutMs, ...[...this.kinds.values()].map((k) => k.idleTimeoutMs)),
    );
  }

  /** True when both the provider and the lookup are the in-memory defaults. */
  get isEmbedded(): boolean {
    return this.provider instanceof InMemoryProvider && this.identityLookup instanceof InMemoryIdentityLookup;
  }

  get isRunning(): boolean {
    return this.state === State.Running;
  }

  /** Host a kind on this member. Before `start()` only. */
  registerKind<T extends object>(definition: KindDefinition<T>): void {
    if (this.state !== State.Created) throw new GrainConfigurationError(`Kind "${definition.name}" registered after the cluster started; register kinds before start().`);
    const existing = this.kinds.get(definition.name);
    if (existing !== undefined) {
      if (existing.definition.grainClass === definition.grainClass) return;
      throw new GrainConfigurationError(
        `Grain kind "${definition.name}" is declared by two classes, "${existing.definition.grainClass.name}" and "${definition.grainClass.name}". Give one of them another kind: @Grain({ kind: '...' }).`,
      );
    }
    this.kinds.set(definition.name, new ClusterKind(definition as KindDefinition, { idleTimeoutMs: this.idleTimeoutMs, maxQueueLength: this.maxQueueLength }));
  }

  /** The kinds hosted here. */
  get kindNames(): string[] {
    return [...this.kinds.keys()];
  }

  async start(): Promise<void> {
    if (this.state !== State.Created) return;
    this.state = State.Running;
    await this.identityLookup.setup(this);
    await this.provider.start({ clusterName: this.clusterName, self: { id: this.memberId, kinds: this.kindNames } });
    this.idleCollector.start();
  }

  /** The members known now. */
  members(): readonly Member[] {
    return this.provider.members();
  }

  stats(): ClusterStats {
    return { activations: this.activations.size, ...this.counters };
  }

  /** A typed client for `kind`. */
  client<T>(kind: string): GrainClient<T> {
    return new KindClient<T>(this, kind);
  }

  /** Call a grain method by name; what a client's references do. */
  request(kind: string, identity: string, method: string, args: unknown[], options?: GrainCallOptions): Promise<unknown> {
    try {
      const timeoutMs = options?.timeout === undefined ? undefined : toMs(options.timeout, 'timeout');
      return this.invoke(kind, identity, method, args, timeoutMs, options?.signal);
    } catch (error) {
      return Promise.reject(error instanceof GrainError ? new InvalidGrainCallError(error.message) : error);
    }
  }

  /** @internal the general path: a reference of a kind not known here, or `request()`. */
  invoke(kind: string, identity: string, method: string, args: unknown[], timeoutMs: number | undefined, signal: AbortSignal | undefined): Promise<unknown> {
    if (this.state !== State.Running) return this.notRunning();
    const clusterKind = this.kinds.get(kind);
    if (clusterKind === undefined) return Promise.reject(new UnknownKindError(kind));
    const route = clusterKind.routes.get(method);
    if (route === undefined) return Promise.reject(new MethodNotCallableError(kind, method));
    return this.invokeRoute(route, identity, `${kind}/${identity}`, args, timeoutMs, signal);
  }

  /** @internal the hot path behind every reference of a known kind. */
  invokeRoute(route: MethodRoute, identity: string, key: string, args: unknown[], timeoutMs: number | undefined, signal: AbortSignal | undefined): Promise<unknown> {
    if (this.state !== State.Running) return this.notRunning();
    const kind = route.kind.name;
    if (signal?.aborted === true) return Promise.reject(new GrainCallAbortedError(kind, identity, route.method, true));
    const timeout = timeoutMs ?? this.requestTimeoutMs;
    const at = now();
    const chain = outgoingChain();
    let call!: Call;
    const promise = new Promise<unknown>((resolve, reject) => {
      call = new Call(kind, identity, key, route.method, args, at + timeout, timeout, chain, resolve, reject);
    });
    call.interleaved = route.interleaved;
    if (signal !== undefined) call.watchCallerSignal(signal, () => this.abort(call));
    this.dispatch(call, at);
    return promise;
  }

  routesOf(kind: string): ReadonlyMap<string, MethodRoute> | undefined {
    return this.kinds.get(kind)?.routes;
  }

  private notRunning(): Promise<never> {
    return Promise.reject(new ClusterShuttingDownError(this.state === State.Created ? 'has not started yet' : 'is shutting down'));
  }

  private dispatch(call: Call, at: number): void {
    const key = call.key;
    if (this.lookups.size > 0) {
      // NOTE: calls behind a lookup in progress wait for it, so calls from one caller keep their order.
      const waiting = this.lookups.get(key);
      if (waiting !== undefined) {
        waiting.push(call);
        return;
      }
    }
    const activation = this.activations.get(key);
    if (activation !== undefined) {
      activation.post(call, at);
      return;
    }
    const waiting = [call];
    this.lookups.set(key, waiting);
    this.identityLookup.get(call.kind, call.identity).then(
      (pid) => {
        this.lookups.delete(key);
        for (const c of waiting) this.deliver(c, pid);
      },
      (error: unknown) => {
        this.lookups.delete(key);
        for (const c of waiting) c.reject(error);
      },
    );
  }

  private deliver(call: Call, pid: Pid): void {
    if (call.settled) return;
    const activation = pid.process;
    if (activation instanceof Activation) activation.post(call, now());
    else call.reject(new GrainError(`Grain ${call.kind}/${call.identity} is placed on member ${pid.memberId}, which this member cannot reach (no remote configured).`, 'GRAIN_NO_ROUTE'));
  }

  private abort(call: Call): void {
    // NOTE: a queued call is skipped when its turn would come; a running one goes on, unheard.
    call.reject(new GrainCallAbortedError(call.kind, call.identity, call.method, call.phase === CallPhase.Pending));
  }

  // LookupMember --------------------------------------------------------------------------

  activateLocal(kind: string, identity: string, epoch: number): Pid {
    const key = `${kind}/${identity}`;
    let activation = this.activations.get(key);
    if (activation === undefined) {
      const clusterKind = this.kinds.get(kind);
      if (clusterKind === undefined) throw new UnknownKindError(kind);
      activation = new Activation(clusterKind, identity, epoch, this);
      this.activations.set(key, activation);
      this.counters.activated++;
      activation.start();
    }
    return { memberId: this.memberId, id: activation.id, process: activation };
  }

  // ActivationHost ------------------------------------------------------------------------

  redirect(call: Call): void {
    if (call.settled) return;
    if (++call.redirects > MAX_REDIRECTS) {
      call.reject(new ClusterUnavailableError(`Call ${call.kind}/${call.identity}.${call.method}() was sent on ${MAX_REDIRECTS} times without finding a live activation; it never ran. Retry later.`));
      return;
    }
    if (this.state !== State.Running) {
      call.reject(new ClusterShuttingDownError());
      return;
    }
    if (now() >= call.deadline) {
      call.reject(new GrainTimeoutError(call.kind, call.identity, call.method, call.timeoutMs, true));
      return;
    }
    // NOTE: a microtask, so that a burst of redirects never recurses on the stack.
    queueMicrotask(() => {
      if (!call.settled) this.dispatch(call, now());
    });
  }

  onStopped(activation: Activation, poisoned: boolean): void {
    const key = activation.label;
    if (this.activations.get(key) === activation) this.activations.delete(key);
    this.counters.deactivated++;
    if (poisoned) this.counters.poisoned++;
    this.identityLookup.remove(activation.kind.name, activation.identity, { memberId: this.memberId, id: activation.id });
  }

  // Shutdown ------------------------------------------------------------------------------

  /**
   * Stop taking calls, deactivate every activation (queued calls run, hooks run) within the
   * drain timeout, then leave the cluster. Calls that arrive meanwhile get
   * `ClusterShuttingDownError`.
   */
  shutdown(): Promise<void> {
    this.stopping ??= this.stop();
    return this.stopping;
  }

  private async stop(): Promise<void> {
    const wasRunning = this.state === State.Running;
    this.state = State.Stopping;
    this.idleCollector.stop();
    if (wasRunning) {
      const all = [...this.activations.values()];
      const drained = Promise.all(all.map((a) => a.deactivate('shutdown')));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        drained.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), this.drainTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        const left = [...this.activations.values()];
        this.logger.warn(`Shutdown: ${left.length} activation(s) did not finish within drainTimeout (${this.drainTimeoutMs} ms); dropped without waiting further.`);
        for (const activation of left) activation.forceStop(new ClusterShuttingDownError());
      }
      await this.identityLookup.shutdown();
      await this.provider.shutdown();
    }
    this.sweeper.stop();
    this.state = State.Stopped;
  }
}
