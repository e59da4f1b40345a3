import { randomUUID } from 'node:crypto';
import { Call, CallPhase } from '../actor/call.js';
import { now } from '../actor/clock.js';
import { DeadlineSweeper } from '../actor/deadline-sweeper.js';
import type { Pid } from '../actor/pid.js';
import { FENCED_CHAIN, outgoingChain } from '../actor/turn.js';
import { Activation, type ActivationHost, type StopKind } from './activation.js';
import {
  type ClusterOptions,
  DEFAULT_DRAIN_TIMEOUT,
  DEFAULT_HANG_TIMEOUT,
  DEFAULT_IDLE_TIMEOUT,
  DEFAULT_MAX_QUEUE_LENGTH,
  DEFAULT_REQUEST_TIMEOUT,
} from './cluster-options.js';
import { ClusterRemote, type RemoteHost } from './cluster-remote.js';
import { toMs } from './duration.js';
import {
  ClusterShuttingDownError,
  ClusterUnavailableError,
  GrainCallAbortedError,
  GrainConfigurationError,
  GrainError,
  GrainIdentityRefusedError,
  GrainTimeoutError,
  InvalidGrainCallError,
  MethodNotCallableError,
  NotHereError,
  UnknownKindError,
} from './errors.js';
import type { GrainCallOptions, GrainClient } from './grain-client.js';
import { type GrainInvoker, KindClient } from './grain-ref.js';
import type { IdentityLookup, LookupMember, TurnGuard } from './identity/identity-lookup.js';
import { InMemoryIdentityLookup } from './identity/in-memory-identity-lookup.js';
import { IdleCollector } from './idle-collector.js';
import { ClusterKind, type KindDefinition, type MethodRoute } from './kind.js';
import { type ClusterLogger, consoleLogger } from './logger.js';
import type { ClusterProvider, Member } from './providers/cluster-provider.js';
import { InMemoryProvider } from './providers/in-memory-provider.js';
import { PidCache } from './pid-cache.js';
import { defaultCodec } from '../remote/codec/default-codec.js';
import { PROTOCOL_MAX, PROTOCOL_MIN } from '../remote/protocol.js';
import { DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_QUEUED_PER_PEER } from '../remote/remote-options.js';
import { Remote } from '../remote/remote.js';
import type { InboundRequest } from '../remote/envelopes.js';

/** A call that never ran is sent on at most this often (each time its activation was gone). */
const MAX_REDIRECTS = 32;
/** After this many redirects a call waits a little (doubling, up to MAX_REDIRECT_DELAY_MS) before the next. */
const REDIRECTS_BEFORE_DELAY = 3;
const MAX_REDIRECT_DELAY_MS = 50;

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
  /** Activations fenced (their member's lease ended) since start. */
  readonly fenced: number;
  /** Actor cache: Pids of grains on other members, and its hit/miss counts. */
  readonly pidCache: { readonly size: number; readonly hits: number; readonly misses: number };
}

/**
 * One member of a grain cluster: hosts kinds, routes calls to activations, owns their
 * lifecycle. Framework-free; the Nest module is a thin adapter over it.
 */
export class Cluster implements GrainInvoker, ActivationHost, LookupMember, RemoteHost {
  readonly clusterName: string;
  readonly memberId: string;
  private currentIncarnation = randomUUID();
  private activationSeq = 0;
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
  /** Calls held while an ended activation's entry is released, by `kind/identity`. */
  private readonly held = new Map<string, Call[]>();
  private readonly idleCollector: IdleCollector;
  private state: State = State.Created;
  private stopping: Promise<void> | undefined;
  private counters = { activated: 0, deactivated: 0, poisoned: 0, fenced: 0 };
  private readonly pidCache = new PidCache();
  /** Routes of kinds this member does not host, by kind then method. */
  private readonly remoteRoutes = new Map<string, Map<string, MethodRoute>>();
  private readonly clusterRemote: ClusterRemote | undefined;
  private remote: Remote | undefined;
  private readonly remoteServer: { host: string; port: number; advertisedHost: string } | undefined;
  private address = '';

  constructor(options: ClusterOptions) {
    if (typeof options.clusterName !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(options.clusterName)) {
      throw new GrainConfigurationError(`clusterName "${String(options.clusterName)}" is not valid; use letters, digits, ".", "_" and "-".`);
    }
    this.clusterName = options.clusterName;
    const remote = options.remote;
    if (remote?.port !== undefined) {
      if (!Number.isInteger(remote.port) || remote.port < 0 || remote.port > 65_535) throw new GrainConfigurationError(`remote.port ${String(remote.port)} is not a port number.`);
      const host = remote.host ?? '0.0.0.0';
      this.remoteServer = { host, port: remote.port, advertisedHost: remote.advertisedHost ?? (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host) };
    }
    // NOTE: a member that serves on a fixed port is known by its address, so its id (and the
    // placement hashed from it) survives restarts; the incarnation tells the runs apart.
    this.memberId = options.memberId ?? (this.remoteServer !== undefined && this.remoteServer.port !== 0 ? `${this.remoteServer.advertisedHost}:${this.remoteServer.port}` : randomUUID());
    this.provider = options.provider ?? new InMemoryProvider();
    this.identityLookup = options.identityLookup ?? new InMemoryIdentityLookup();
    this.turnGuard = this.identityLookup.turnGuard;
    this.logger = options.logger ?? consoleLogger;
    this.requestTimeoutMs = toMs(options.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT, 'requestTimeout');
    this.idleTimeoutMs = toMs(options.idleTimeout ?? DEFAULT_IDLE_TIMEOUT, 'idleTimeout');
    this.hangTimeoutMs = toMs(options.hangTimeout ?? DEFAULT_HANG_TIMEOUT, 'hangTimeout');
    this.drainTimeoutMs = toMs(options.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT, 'drainTimeout');
    this.maxQueueLength = options.maxQueueLength ?? DEFAULT_MAX_QUEUE_LENGTH;
    if (!Number.isInteger(this.maxQueueLength) || this.maxQueueLength < 1) {
      throw new GrainConfigurationError('maxQueueLength must be a positive integer.');
    }
    if (remote !== undefined || !(this.provider instanceof InMemoryProvider)) {
      const maxMessageSize = remote?.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
      this.clusterRemote = new ClusterRemote(
        this,
        remote?.codec ?? defaultCodec(maxMessageSize),
        remote?.protocol ?? { min: PROTOCOL_MIN, max: PROTOCOL_MAX },
        maxMessageSize,
        remote?.maxQueuedPerPeer ?? DEFAULT_MAX_QUEUED_PER_PEER,
      );
    }
    this.idleCollector = new IdleCollector(
      () => this.activations.values(),
      () => Math.min(this.idleTimeoutMs, ...[...this.kinds.values()].map((k) => k.idleTimeoutMs)),
    );
  }

  /** True when both the provider and the lookup are the in-memory defaults and there is no remote. */
  get isEmbedded(): boolean {
    return this.provider instanceof InMemoryProvider && this.identityLookup instanceof InMemoryIdentityLookup && this.clusterRemote === undefined;
  }

  /** New on every start and every time the member is fenced and rejoins: tells the runs of a member apart. */
  get incarnation(): string {
    return this.currentIncarnation;
  }

  readonly turnGuard: TurnGuard | undefined;

  /** This member as others see it. */
  self(): Member {
    return { id: this.memberId, incarnation: this.currentIncarnation, address: this.address, kinds: this.kindNames };
  }

  /** Where this member's remote listens (`host:port`), once started; '' without a server. */
  get remoteAddress(): string {
    return this.address;
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
    if (this.clusterRemote !== undefined) {
      const glue = this.clusterRemote;
      this.remote = glue.remote = new Remote({
        ...(this.remoteServer !== undefined && { server: { host: this.remoteServer.host, port: this.remoteServer.port } }),
        maxMessageSize: glue.maxMessageSize,
        maxQueuedPerPeer: glue.maxQueuedPerPeer,
        sweeper: this.sweeper,
        handshake: () => ({ clusterName: this.clusterName, member: glue.self(), minProtocol: glue.protocol.min, maxProtocol: glue.protocol.max, codec: glue.codecName, expectedIncarnation: '' }),
        events: glue,
        inbound: glue,
      });
      let port: number | undefined;
      try {
        port = await this.remote.start();
      } catch (error) {
        this.state = State.Stopped;
        throw new GrainConfigurationError(`The remote could not listen on ${this.remoteServer!.host}:${this.remoteServer!.port}: ${(error as Error).message}. Pick a free port (remote.port).`);
      }
      if (port !== undefined) this.address = `${this.remoteServer!.advertisedHost}:${port}`;
    }
    await this.identityLookup.setup(this);
    await this.provider.start({ clusterName: this.clusterName, self: this.self(), probe: (address) => this.remote?.probe(address), log: (level, message) => this.logger[level](message) });
    this.idleCollector.start();
  }

  /** The members known now. */
  members(): readonly Member[] {
    return this.provider.members();
  }

  stats(): ClusterStats {
    const { size, hits, misses } = this.pidCache;
    return { activations: this.activations.size, ...this.counters, pidCache: { size, hits, misses } };
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
    let route: MethodRoute | undefined;
    if (clusterKind !== undefined) {
      route = clusterKind.routes.get(method);
      if (route === undefined) return Promise.reject(new MethodNotCallableError(kind, method));
    } else {
      // NOTE: a kind hosted elsewhere: the member hosting it checks the method.
      if (this.clusterRemote === undefined) return Promise.reject(new UnknownKindError(kind));
      route = this.remoteRoute(kind, method);
    }
    return this.invokeRoute(route, identity, `${kind}/${identity}`, args, timeoutMs, signal);
  }

  /** @internal the hot path behind every reference of a known kind. */
  invokeRoute(route: MethodRoute, identity: string, key: string, args: unknown[], timeoutMs: number | undefined, signal: AbortSignal | undefined): Promise<unknown> {
    if (this.state !== State.Running) return this.notRunning();
    const kind = route.kindName;
    if (signal?.aborted === true) return Promise.reject(new GrainCallAbortedError(kind, identity, route.method, true));
    const timeout = timeoutMs ?? this.requestTimeoutMs;
    const at = now();
    const chain = outgoingChain();
    if (chain === FENCED_CHAIN) {
      return Promise.reject(new ClusterUnavailableError(`A fenced activation (its member's lease ended) cannot call ${kind}/${identity}.${route.method}(); the call never ran.`));
    }
    let call!: Call;
    const promise = new Promise<unknown>((resolve, reject) => {
      call = new Call(kind, identity, key, route.method, args, at + timeout, timeout, chain, resolve, reject);
    });
    call.interleaved = route.interleaved;
    call.idempotent = route.idempotent;
    if (signal !== undefined) call.watchCallerSignal(signal, () => this.abort(call));
    this.dispatch(call, at);
    return promise;
  }

  routesOf(kind: string): ReadonlyMap<string, MethodRoute> | undefined {
    return this.kinds.get(kind)?.routes;
  }

  remoteRouteOf(kind: string, method: string): MethodRoute | undefined {
    if (this.clusterRemote === undefined || this.kinds.has(kind)) return undefined;
    return this.remoteRoute(kind, method);
  }

  private remoteRoute(kind: string, method: string): MethodRoute {
    let routes = this.remoteRoutes.get(kind);
    if (routes === undefined) this.remoteRoutes.set(kind, (routes = new Map()));
    let route = routes.get(method);
    if (route === undefined) {
      if (routes.size >= 1_000) routes.clear(); // NOTE: names come from callers; keep the map bounded.
      routes.set(method, (route = { kindName: kind, kind: undefined, method, interleaved: false, idempotent: false }));
    }
    return route;
  }

  private notRunning(): Promise<never> {
    return Promise.reject(new ClusterShuttingDownError(this.state === State.Created ? 'has not started yet' : 'is shutting down'));
  }

  private dispatch(call: Call, at: number): void {
    const key = call.key;
    if (this.lookups.size > 0 || this.held.size > 0) {
      // NOTE: calls behind a lookup in progress (or a release) wait for it, so calls from one
      // caller keep their order.
      const waiting = this.lookups.get(key) ?? this.held.get(key);
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
    if (!call.inbound) {
      const pid = this.pidCache.get(key);
      if (pid !== undefined) {
        this.clusterRemote!.send(call, pid);
        return;
      }
    }
    const canActivate = this.kinds.get(call.kind)?.canActivate;
    if (canActivate !== undefined) {
      let accepted: boolean;
      try {
        accepted = canActivate(call.identity) === true;
      } catch {
        accepted = false;
      }
      if (!accepted) {
        call.reject(new GrainIdentityRefusedError(call.kind, call.identity));
        return;
      }
    }
    const waiting = [call];
    this.lookups.set(key, waiting);
    this.identityLookup.get(call.kind, call.identity, { inbound: call.inbound, deadline: call.deadline }).then(
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
    if (activation instanceof Activation) {
      activation.post(call, now());
      return;
    }
    if (call.inbound) {
      // NOTE: a peer asked the wrong member; it resolves again rather than this one forwarding.
      call.reject(new NotHereError(call.kind, call.identity));
      return;
    }
    if (this.clusterRemote === undefined || !pid.address) {
      call.reject(new GrainError(`Grain ${call.kind}/${call.identity} is placed on member ${pid.memberId}, which this member cannot reach (no remote configured).`, 'GRAIN_NO_ROUTE'));
      return;
    }
    this.pidCache.set(call.key, pid);
    this.clusterRemote.send(call, pid);
  }

  private abort(call: Call): void {
    // NOTE: a queued call is skipped when its turn would come; a running one goes on, unheard.
    call.reject(new GrainCallAbortedError(call.kind, call.identity, call.method, call.phase === CallPhase.Pending));
  }

  // LookupMember --------------------------------------------------------------------------

  activateLocal(kind: string, identity: string, epoch: number, activationId?: string): Pid {
    const key = `${kind}/${identity}`;
    let activation = this.activations.get(key);
    if (activation === undefined) {
      const clusterKind = this.kinds.get(kind);
      if (clusterKind === undefined) throw new UnknownKindError(kind);
      activation = new Activation(clusterKind, identity, epoch, this, activationId, this.currentIncarnation);
      this.activations.set(key, activation);
      this.counters.activated++;
      activation.start();
    }
    return { memberId: this.memberId, incarnation: activation.incarnation, id: activation.id, process: activation };
  }

  membershipComplete(): boolean {
    return this.provider.complete !== false;
  }

  hostsKind(kind: string): boolean {
    return this.kinds.has(kind);
  }

  newActivationId(): string {
    // NOTE: the incarnation keeps ids unique across restarts of a member with a stable id.
    return `${this.memberId}:${this.currentIncarnation.slice(0, 8)}:${(++this.activationSeq).toString(36)}`;
  }

  fenceAll(reason: string): void {
    const all = [...this.activations.values()];
    this.currentIncarnation = randomUUID();
    for (const activation of all) activation.fence(reason, false);
    this.pidCache.clear();
    this.logger.warn(`Member ${this.memberId} fenced ${all.length} activation(s): ${reason}. It continues as incarnation ${this.currentIncarnation}.`);
  }

  log(level: 'log' | 'warn', message: string): void {
    this.logger[level](message);
  }

  // RemoteHost ----------------------------------------------------------------------------

  acceptsCalls(): boolean {
    return this.state === State.Running;
  }

  leaseValid(): boolean {
    return this.turnGuard === undefined || this.turnGuard.canSettle(now());
  }

  forgetAddress(address: string): void {
    this.pidCache.dropAddress(address);
  }

  forgetPid(call: Call): void {
    this.pidCache.delete(call.key);
  }

  peerSeen(member: Member): void {
    this.pidCache.dropMember(member.id, member.incarnation);
    this.provider.onPeer?.(member);
  }

  createInboundCall(request: InboundRequest, args: unknown[], resolve: (value: unknown) => void, reject: (error: unknown) => void): Call | GrainError {
    const clusterKind = this.kinds.get(request.kind);
    if (clusterKind === undefined) return new NotHereError(request.kind, request.identity);
    const route = clusterKind.routes.get(request.method);
    if (route === undefined) return new MethodNotCallableError(request.kind, request.method);
    const at = now();
    const call = new Call(request.kind, request.identity, `${request.kind}/${request.identity}`, request.method, args, at + request.timeoutMs, request.timeoutMs, request.chain, resolve, reject);
    call.interleaved = route.interleaved;
    call.idempotent = route.idempotent;
    call.inbound = true;
    return call;
  }

  serveInbound(call: Call): void {
    this.dispatch(call, now());
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
    if (call.redirects <= REDIRECTS_BEFORE_DELAY) {
      // NOTE: a microtask, so that a burst of redirects never recurses on the stack.
      queueMicrotask(() => {
        if (!call.settled) this.dispatch(call, now());
      });
      return;
    }
    // NOTE: a grain still moving (a lease lapsing, a member restarting) answers "not here"
    // for a moment; later redirects wait a little so a call rides that out within its deadline.
    const delay = Math.min(MAX_REDIRECT_DELAY_MS, 2 ** (call.redirects - REDIRECTS_BEFORE_DELAY));
    setTimeout(() => {
      if (!call.settled) this.dispatch(call, now());
    }, delay).unref();
  }

  onStopped(activation: Activation, how: StopKind): void {
    const key = activation.label;
    if (this.activations.get(key) === activation) this.activations.delete(key);
    this.counters.deactivated++;
    if (how === 'poisoned') this.counters.poisoned++;
    if (how === 'fenced') {
      // NOTE: a fenced activation's claim is not this member's to release any more.
      this.counters.fenced++;
      return;
    }
    const released = this.identityLookup.remove(activation.kind.name, activation.identity, { memberId: this.memberId, incarnation: activation.incarnation, id: activation.id }, activation.epoch);
    if (released !== undefined && !this.held.has(key)) {
      const held: Call[] = [];
      this.held.set(key, held);
      void released.finally(() => {
        this.held.delete(key);
        for (const call of held) if (!call.settled) this.dispatch(call, now());
      });
    }
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
      await this.remote?.shutdown();
    }
    this.sweeper.stop();
    this.state = State.Stopped;
  }
}
