import { Call, CallPhase, captureSettlers, noop, releaseSettlers, settlers } from '../actor/call.js';
import { now } from '../actor/clock.js';
import type { Pid } from '../actor/pid.js';
import { chainOf, synchronousTurn, type TurnSource, type TurnState, turnStorage } from '../actor/turn.js';
import type { WaitingCalls } from '../actor/waiting-calls.js';
import { CallTelemetry } from '../observability/call-telemetry.js';
import { Activation, type StopKind } from './activation/activation.js';
import type { ActivationRegistry } from './activation/activation-registry.js';
import {
  ClusterShuttingDownError,
  ClusterUnavailableError,
  GrainCallAbortedError,
  GrainError,
  GrainIdentityRefusedError,
  GrainTimeoutError,
  InvalidGrainCallError,
  MethodNotCallableError,
  NotHereError,
  UnknownKindError,
} from './errors.js';
import type { Fencing } from './fencing.js';
import type { GrainInvoker } from './kind-client.js';
import type { IdentityLookup } from './identity/identity-lookup.js';
import { identityProblem } from './identity-rule.js';
import type { ClusterKind, MethodRoute } from './kind.js';
import type { MembershipEvent } from './member-list.js';
import { PidCache } from './pid-cache.js';
import { type LocalWire, WireCall } from './remoting/local-wire.js';
import { MAX_REDIRECTS, redirectDelayMs } from './retry-policy.js';

/** Names of methods of a remote-only kind remembered per kind (names come from callers). */
const MAX_REMOTE_ROUTES_PER_KIND = 1_000;

/** The caller side of the remote, as the router sees it. */
export interface CallSender {
  /** Send `call` to the activation `pid` on another member. */
  send(call: Call, pid: Pid): void;
}

/** A request from a peer, as the router needs it. */
export interface InboundCallRequest {
  readonly kind: string;
  readonly identity: string;
  readonly method: string;
  readonly timeoutMs: number;
  readonly chain: Call['chain'];
  /** The caller's W3C trace context ('' or absent when none). */
  readonly traceparent?: string;
  readonly tracestate?: string;
}

/**
 * Where the outcome of a peer's request goes: `reply` (what `serveInbound` was given with the
 * request, e.g. the stream's respond function) is handed back, so no closure is made per call.
 */
export interface InboundReplies<Request, Reply> {
  resolved(request: Request, value: unknown, reply: Reply): void;
  rejected(request: Request, error: unknown, reply: Reply): void;
}

/** A peer's request as a call: it answers through `replies` itself, with no settlers of its own. */
class InboundCall<Request extends InboundCallRequest, Reply> extends Call {
  constructor(
    private readonly request: Request,
    private readonly replies: InboundReplies<Request, Reply>,
    private readonly reply: Reply,
    key: string,
    args: unknown[],
    at: number,
  ) {
    super(request.kind, request.identity, key, request.method, args, at + request.timeoutMs, request.timeoutMs, request.chain, noop, noop);
  }

  protected override fulfil(value: unknown): void {
    this.replies.resolved(this.request, value, this.reply);
  }

  protected override fail(reason: unknown): void {
    this.replies.rejected(this.request, reason, this.reply);
  }
}

/** What the router needs from the rest of the member. */
export interface RequestRouterDeps {
  readonly kinds: ReadonlyMap<string, ClusterKind>;
  readonly activations: ActivationRegistry;
  readonly identityLookup: IdentityLookup;
  readonly fencing: Fencing;
  readonly requestTimeoutMs: number;
  /** The caller side of the remote; undefined for the embedded member (no remote). */
  readonly sender: CallSender | undefined;
  /** Where calls waiting outside a mailbox keep their deadlines. */
  readonly waiting: WaitingCalls;
  /** The longest identity, in UTF-8 bytes (identity-rule.ts). */
  readonly maxIdentityBytes: number;
  /** Whether a member other than this one may host `kind` now (for calls made while this one leaves). */
  hostedElsewhere(kind: string): boolean;
  /** Set by `serializeLocalCalls`: calls served on this member cross this codec, as calls between members do. */
  readonly localWire?: LocalWire;
  /** Turns run inside `turnStorage` (`callChains` resolved to 'async-local-storage'); else references carry them. */
  readonly asyncContext: boolean;
}

const State = { Created: 0, Starting: 1, Running: 2, Stopping: 3 } as const;
type State = (typeof State)[keyof typeof State];

/**
 * The request path of one member, like Proto.Cluster's DefaultClusterContext: a call goes to
 * the local activation, or the cached Pid, or the identity lookup (which finds or places
 * the grain), and is sent on when it provably never ran (retry-policy.ts). Calls behind a
 * lookup in progress, or behind the release of an ended activation, wait for it so that one
 * caller's calls keep their order.
 */
export class RequestRouter implements GrainInvoker {
  private state: State = State.Created;
  private leaving = false;
  /** The actor cache: where grains hosted by other members live. */
  readonly pidCache = new PidCache();
  /** Calls waiting for a lookup in progress, by `kind/identity`. */
  private readonly lookups = new Map<string, Call[]>();
  /** Calls held while an ended activation's entry is released, by `kind/identity`. */
  private readonly held = new Map<string, Call[]>();
  /** Calls made while the member starts, routed once it has (`open`). */
  private startup: Call[] = [];
  /** Routes of kinds this member does not host, by kind then method. */
  private readonly remoteRoutes = new Map<string, Map<string, MethodRoute>>();
  private readonly kinds: ReadonlyMap<string, ClusterKind>;
  private readonly activations: ActivationRegistry;
  private readonly identityLookup: IdentityLookup;
  private readonly fencing: Fencing;
  private readonly requestTimeoutMs: number;
  private readonly sender: CallSender | undefined;
  private readonly waiting: WaitingCalls;
  private readonly hostedElsewhere: (kind: string) => boolean;
  private readonly localWire: LocalWire | undefined;
  private readonly asyncContext: boolean;
  /** Spans and durations of calls, when an OpenTelemetry SDK records (lib/observability). */
  private readonly telemetry = new CallTelemetry();
  readonly maxIdentityBytes: number;

  constructor(deps: RequestRouterDeps) {
    this.hostedElsewhere = deps.hostedElsewhere;
    this.localWire = deps.localWire;
    this.asyncContext = deps.asyncContext;
    this.waiting = deps.waiting;
    this.maxIdentityBytes = deps.maxIdentityBytes;
    this.kinds = deps.kinds;
    this.activations = deps.activations;
    this.identityLookup = deps.identityLookup;
    this.fencing = deps.fencing;
    this.requestTimeoutMs = deps.requestTimeoutMs;
    this.sender = deps.sender;
  }

  /** Take calls, holding them until `open()`: the member is starting (its lookup and provider are not ready yet). */
  begin(): void {
    this.state = State.Starting;
  }

  /** Route calls (the member started), those held while it started first, in their order. */
  open(): void {
    this.state = State.Running;
    const held = this.startup;
    this.startup = [];
    for (const call of held) {
      this.waiting.delete(call);
      if (!call.settled) this.dispatch(call, now());
    }
  }

  /** Refuse new calls with ClusterShuttingDownError (the member is stopping, or failed to start). */
  close(): void {
    this.state = State.Stopping;
    const held = this.startup;
    this.startup = [];
    for (const call of held) {
      this.waiting.delete(call);
      call.reject(new ClusterShuttingDownError());
    }
  }

  /**
   * The member is leaving: a peer's call for a grain not active here is answered "not here"
   * (the caller places it elsewhere) instead of claiming it here.
   */
  leave(): void {
    this.leaving = true;
  }

  /** True while the member takes calls (holding them while it starts). */
  get running(): boolean {
    return this.state === State.Running || this.state === State.Starting;
  }

  // GrainInvoker: what clients call ----------------------------------------------------------

  invoke(
    kind: string,
    identity: string,
    method: string,
    args: unknown[],
    timeoutMs: number | undefined,
    signal: AbortSignal | undefined,
    from?: TurnSource,
  ): Promise<unknown> {
    if (this.state !== State.Running && this.state !== State.Starting) return this.notRunning();
    const problem = identityProblem(identity, this.maxIdentityBytes);
    if (problem !== undefined) return Promise.reject(new InvalidGrainCallError(`${kind}: ${problem}.`));
    const clusterKind = this.kinds.get(kind);
    let route: MethodRoute | undefined;
    if (clusterKind !== undefined) {
      route = clusterKind.routes.get(method);
      if (route === undefined) return Promise.reject(new MethodNotCallableError(kind, method));
    } else {
      // NOTE: a kind hosted elsewhere: the member hosting it checks the method.
      if (this.sender === undefined) return Promise.reject(new UnknownKindError(kind));
      route = this.remoteRoute(kind, method);
    }
    return this.invokeRoute(route, identity, `${kind}/${identity}`, args, timeoutMs, signal, from);
  }

  invokeRoute(
    route: MethodRoute,
    identity: string,
    key: string,
    args: unknown[],
    timeoutMs: number | undefined,
    signal: AbortSignal | undefined,
    from?: TurnSource,
  ): Promise<unknown> {
    if (this.state !== State.Running && this.state !== State.Starting) return this.notRunning();
    const kind = route.kindName;
    if (signal?.aborted === true) return Promise.reject(new GrainCallAbortedError(kind, identity, route.method, true));
    // NOTE: while this member leaves, its calls go to the others; with no other member for the
    // kind (the embedded member, the last host) there is nowhere to go: refused at once.
    if (this.leaving && !this.hostedElsewhere(kind)) return this.notRunning();
    // NOTE: the one place a kind's own requestTimeout (@Grain) applies: a route of a kind hosted
    // here carries its kind, whatever reference or name the call came through (`invoke` looks
    // the route up when the call is made); a kind known by name only gets the cluster's.
    const timeout = timeoutMs ?? route.kind?.requestTimeoutMs ?? this.requestTimeoutMs;
    const at = now();
    const turn = this.callingTurn(from);
    const chain = chainOf(turn);
    const refused = this.fencing.refuseOutgoing(chain, kind, identity, route.method);
    if (refused !== undefined) return Promise.reject(refused);
    const wire = this.localWire;
    const promise = new Promise<unknown>(captureSettlers);
    const call =
      wire === undefined
        ? new Call(kind, identity, key, route.method, args, at + timeout, timeout, chain, settlers.resolve, settlers.reject)
        : new WireCall(wire, kind, identity, key, route.method, args, at + timeout, timeout, chain, settlers.resolve, settlers.reject);
    releaseSettlers();
    call.interleaved = route.interleaved;
    call.idempotent = route.idempotent;
    if (this.telemetry.on) this.telemetry.client(call, turn);
    if (signal !== undefined) call.watchCallerSignal(signal, () => this.abort(call));
    this.dispatch(call, at);
    return promise;
  }

  /**
   * The turn a call made now belongs to: with async context, the one it runs in (whatever
   * reference it goes through). Else the turn whose synchronous part runs now — exact, even
   * for a reference that came from another grain — and, outside any, the turn of the
   * activation whose own reference makes the call (its guess: see `Activation.currentTurn`);
   * undefined for other references (untracked, as calls from outside any grain are).
   */
  private callingTurn(from: TurnSource | undefined): TurnState | undefined {
    if (this.asyncContext) return turnStorage.getStore();
    return synchronousTurn() ?? from?.currentTurn();
  }

  routesOf(kind: string): ReadonlyMap<string, MethodRoute> | undefined {
    return this.kinds.get(kind)?.routes;
  }

  remoteRouteOf(kind: string, method: string): MethodRoute | undefined {
    if (this.sender === undefined || this.kinds.has(kind)) return undefined;
    return this.remoteRoute(kind, method);
  }

  // Inbound: one call from a peer ------------------------------------------------------------

  /** Why a peer's request is not served here, judged on its kind and method alone (before its arguments are decoded); undefined when it may be. */
  inboundRouteProblem(request: InboundCallRequest): GrainError | undefined {
    const clusterKind = this.kinds.get(request.kind);
    if (clusterKind === undefined) return new NotHereError(request.kind, request.identity);
    if (!clusterKind.routes.has(request.method)) return new MethodNotCallableError(request.kind, request.method);
    return undefined;
  }

  /**
   * Serve a peer's request here (or answer it "not here"): the outcome goes to `replies`, with
   * `reply`. Returns the error instead when the request names a kind or method this member
   * does not serve; nothing was dispatched then.
   */
  serveInbound<Request extends InboundCallRequest, Reply>(
    request: Request,
    args: unknown[],
    replies: InboundReplies<Request, Reply>,
    reply: Reply,
  ): GrainError | undefined {
    const clusterKind = this.kinds.get(request.kind);
    if (clusterKind === undefined) return new NotHereError(request.kind, request.identity);
    const route = clusterKind.routes.get(request.method);
    if (route === undefined) return new MethodNotCallableError(request.kind, request.method);
    const key = `${request.kind}/${request.identity}`;
    const at = now();
    const call = new InboundCall(request, replies, reply, key, args, at);
    call.interleaved = route.interleaved;
    call.idempotent = route.idempotent;
    call.inbound = true;
    if (this.telemetry.on) this.telemetry.inbound(call, request.traceparent ?? '', request.tracestate ?? '');
    this.dispatch(call, at);
    return undefined;
  }

  // Routing ----------------------------------------------------------------------------------

  private dispatch(call: Call, at: number): void {
    if (this.state === State.Starting) {
      // NOTE: the lookup and the provider are not ready: hold the call (within its deadline).
      this.startup.push(call);
      this.waiting.add(call);
      return;
    }
    const key = call.key;
    if (this.lookups.size > 0 || this.held.size > 0) {
      // NOTE: calls behind a lookup in progress (or a release) wait for it, so calls from one
      // caller keep their order.
      const waiting = this.lookups.get(key) ?? this.held.get(key);
      if (waiting !== undefined) {
        waiting.push(call);
        this.waiting.add(call);
        return;
      }
    }
    const activation = this.activations.get(call.kind, call.identity);
    if (activation !== undefined) {
      this.postHere(activation, call, at);
      return;
    }
    if (call.inbound && this.leaving) {
      // NOTE: a peer's call for a grain not active here (any more) while this member leaves:
      // the peer places it elsewhere.
      call.reject(new NotHereError(call.kind, call.identity));
      return;
    }
    if (!call.inbound) {
      const pid = this.pidCache.get(key);
      if (pid !== undefined) {
        this.sender!.send(call, pid);
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
    // NOTE: a lookup may take longer than the call may wait (Redis slow or paused): the call
    // keeps its deadline meanwhile, and the lookup's answer finds it settled.
    this.waiting.add(call);
    this.identityLookup.get(call.kind, call.identity, { inbound: call.inbound, deadline: call.deadline }).then(
      (pid) => {
        this.lookups.delete(key);
        for (const c of waiting) {
          this.waiting.delete(c);
          this.deliver(c, pid);
        }
      },
      (error: unknown) => {
        this.lookups.delete(key);
        for (const c of waiting) {
          this.waiting.delete(c);
          c.reject(error);
        }
      },
    );
  }

  private deliver(call: Call, pid: Pid): void {
    if (call.settled) return;
    const activation = pid.process;
    if (activation instanceof Activation) {
      this.postHere(activation, call, now());
      return;
    }
    if (call.inbound) {
      // NOTE: a peer asked the wrong member; it resolves again rather than this one forwarding.
      call.reject(new NotHereError(call.kind, call.identity));
      return;
    }
    if (this.sender === undefined || !pid.address) {
      call.reject(
        new GrainError(
          `Grain ${call.kind}/${call.identity} is placed on member ${pid.memberId}, which this member cannot reach (no remote configured).`,
          'GRAIN_NO_ROUTE',
        ),
      );
      return;
    }
    this.pidCache.set(call.key, pid);
    this.sender.send(call, pid);
  }

  /**
   * Hand `call` to an activation of this member: directly, with no serialization, unless
   * `serializeLocalCalls` is on; then its arguments cross the codec first (once), where a call
   * to another member would be encoded.
   */
  private postHere(activation: Activation, call: Call, at: number): void {
    if (this.localWire !== undefined && call instanceof WireCall && !call.crossed && !call.crossArguments()) return;
    if (call.observer !== undefined) this.telemetry.reached(call);
    activation.post(call, at);
  }

  /** Send a call that provably never ran on to wherever its grain is now, within its deadline. */
  redirect(call: Call): void {
    if (call.settled) return;
    if (++call.redirects > MAX_REDIRECTS) {
      call.reject(
        new ClusterUnavailableError(
          `Call ${call.kind}/${call.identity}.${call.method}() was sent on ${MAX_REDIRECTS} times without finding a live activation; it never ran. Retry later.`,
        ),
      );
      return;
    }
    if (this.state !== State.Running && this.state !== State.Starting) {
      call.reject(new ClusterShuttingDownError());
      return;
    }
    if (this.leaving && !call.inbound && !this.hostedElsewhere(call.kind)) {
      call.reject(new ClusterShuttingDownError('is leaving the cluster'));
      return;
    }
    if (now() >= call.deadline) {
      call.reject(new GrainTimeoutError(call.kind, call.identity, call.method, call.timeoutMs, true));
      return;
    }
    if (this.telemetry.on) this.telemetry.redirected(call);
    const delay = redirectDelayMs(call.redirects);
    if (delay === 0) {
      // NOTE: a microtask, so that a burst of redirects never recurses on the stack.
      queueMicrotask(() => {
        if (!call.settled) this.dispatch(call, now());
      });
      return;
    }
    // NOTE: never sleep past the deadline: a call whose deadline comes first times out then.
    setTimeout(
      () => {
        if (call.settled) return;
        if (now() >= call.deadline) call.reject(new GrainTimeoutError(call.kind, call.identity, call.method, call.timeoutMs, true));
        else this.dispatch(call, now());
      },
      Math.min(delay, Math.max(0, call.deadline - now())),
    ).unref();
  }

  /**
   * An activation of this member ended: release its claim (unless it was fenced: then the
   * claim is not this member's to release), holding calls for the grain until the release
   * settles so none of them finds the old entry and re-creates the old activation.
   */
  released(activation: Activation, how: StopKind): void {
    if (how === 'fenced') return;
    const key = activation.label;
    const released = this.identityLookup.remove(activation.kind.name, activation.identity, activation.toPid(), activation.epoch);
    if (released !== undefined && !this.held.has(key)) {
      const held: Call[] = [];
      this.held.set(key, held);
      void released.finally(() => {
        this.held.delete(key);
        for (const call of held) {
          this.waiting.delete(call);
          if (!call.settled) this.dispatch(call, now());
        }
      });
    }
  }

  // Actor cache ------------------------------------------------------------------------------

  /** Forget where `call`'s grain was believed to live. */
  forgetPid(call: Call): void {
    this.pidCache.delete(call.key);
  }

  /** Forget every grain believed to live at `address` (its connection failed). */
  forgetAddress(address: string): void {
    this.pidCache.dropAddress(address);
  }

  /** The membership changed: Pids on a member that left, or of its old incarnation, are stale. */
  membershipChanged(event: MembershipEvent): void {
    if (event.type === 'left') this.pidCache.dropMember(event.member.id);
    else if (event.type === 'changed') {
      this.pidCache.dropMember(event.member.id, event.member.incarnation);
      if (event.previous.address !== event.member.address) this.pidCache.dropAddress(event.previous.address);
    }
  }

  // Internals --------------------------------------------------------------------------------

  private remoteRoute(kind: string, method: string): MethodRoute {
    let routes = this.remoteRoutes.get(kind);
    if (routes === undefined) this.remoteRoutes.set(kind, (routes = new Map()));
    let route = routes.get(method);
    if (route === undefined) {
      if (routes.size >= MAX_REMOTE_ROUTES_PER_KIND) routes.clear(); // NOTE: names come from callers; keep the map bounded.
      routes.set(method, (route = { kindName: kind, kind: undefined, method, interleaved: false, idempotent: false }));
    }
    return route;
  }

  private notRunning(): Promise<never> {
    return Promise.reject(
      new ClusterShuttingDownError(this.state === State.Created ? 'has not started yet' : this.leaving ? 'is leaving the cluster' : 'is shutting down'),
    );
  }

  private abort(call: Call): void {
    // NOTE: a queued call is skipped when its turn would come; a running one goes on, unheard.
    call.reject(new GrainCallAbortedError(call.kind, call.identity, call.method, call.phase === CallPhase.Pending));
  }
}
