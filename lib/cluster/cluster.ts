import { randomUUID } from 'node:crypto';
import { DeadlineSweeper } from '../actor/deadline-sweeper.js';
import { WaitingCalls } from '../actor/waiting-calls.js';
import { ActivationRegistry } from './activation/activation-registry.js';
import { IdleCollector } from './activation/idle-collector.js';
import {
  type ClusterOptions,
  DEFAULT_DRAIN_TIMEOUT,
  DEFAULT_HANG_TIMEOUT,
  DEFAULT_IDLE_TIMEOUT,
  DEFAULT_MAX_QUEUE_LENGTH,
  DEFAULT_REQUEST_TIMEOUT,
} from './cluster-options.js';
import { type Duration, toMs } from './duration.js';
import { ClusterShuttingDownError, ClusterUnavailableError, GrainConfigurationError, GrainError, GrainTimeoutError, InvalidGrainCallError } from './errors.js';
import { Fencing } from './fencing.js';
import { DEFAULT_MAX_IDENTITY_BYTES } from './identity-rule.js';
import type { GrainCallOptions, GrainClient } from './grain-client.interface.js';
import { KindClient } from './kind-client.js';
import { asyncContextIsCheap, type CallChainTracking } from '../actor/turn.js';
import type { IdentityLookup } from './identity/identity-lookup.js';
import { InMemoryIdentityLookup } from './identity/in-memory-identity-lookup.js';
import { ClusterKind, type KindDefinition } from './kind.js';
import { LocalMember } from './local-member.js';
import { type ClusterLogger, consoleLogger } from './logger.js';
import { lookupMemberOf } from './lookup-member.js';
import { MemberList, type MembershipListener } from './member-list.js';
import type { ClusterProvider, Member } from './providers/cluster-provider.js';
import { InMemoryProvider } from './providers/in-memory-provider.js';
import { ClusterRemoting, hostPort, serverAddressOf } from './remoting/cluster-remoting.js';
import { DEFAULT_MAX_TIMEOUT_MS } from '../remote/inbound-limits.js';
import { RequestRouter } from './request-router.js';
import { localWireOf } from './remoting/local-wire.js';
import { gossipSettings } from './gossip/gossip-options.js';
import { type ClusterGossip, Gossiper, type TopologyConsensus } from './gossip/gossiper.js';

const CLUSTER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const State = { Created: 0, Running: 1, Stopping: 2, Stopped: 3 } as const;
/** How often `whenReady` looks again. */
const READY_POLL_MS = 25;
/** The longest a leaving member waits for its callers to hang up after telling them it drained. */
const MAX_CLOSE_GRACE_MS = 2_000;
type State = (typeof State)[keyof typeof State];

/** What `cluster.health()` reports. */
export interface ClusterHealth {
  /** Started, membership known, able to place grains (lease held), not leaving. */
  readonly ready: boolean;
  /** The member is leaving the cluster (shutting down). */
  readonly leaving: boolean;
  /** Members known now, this one included. */
  readonly members: number;
  /** The provider has reported the membership (complete): placement may go ahead. */
  readonly membershipKnown: boolean;
  readonly provider: { readonly name: string; readonly reachable: boolean; readonly detail?: string };
  readonly identityLookup: { readonly name: string; readonly reachable: boolean; readonly ready: boolean; readonly detail?: string };
  /** What gossip says: whether every member sees the same member set, and who is suspected. */
  readonly gossip: {
    readonly enabled: boolean;
    /** Every listed member gossiped the same topology hash as this one (see `TopologyConsensus`). */
    readonly topologyConsensus: boolean;
    readonly topologyHash: string;
    /** Ids of the members suspected now (no new grains go there). */
    readonly suspected: readonly string[];
  };
  /** What is wrong, when something is. */
  readonly detail?: string;
}

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
 * One member of a grain cluster, as its user sees it: options, kinds, start and shutdown,
 * typed clients, members and stats. Framework-free; the Nest module is a thin adapter over it.
 *
 * The work is done by parts it composes (like Proto.Cluster's Cluster over its
 * DefaultClusterContext): the request path (request-router.ts), the activations
 * (activation/), fencing (fencing.ts), the remote seam (remoting/), the identity lookup and
 * the cluster provider. Each gets a narrow interface, never the Cluster itself.
 */
export class Cluster {
  /** The cluster's name; members of different clusters never talk. */
  readonly clusterName: string;
  /** This member's id. */
  readonly memberId: string;
  /** Membership (the cluster provider). */
  readonly provider: ClusterProvider;
  /** Where grains live (the identity lookup). */
  readonly identityLookup: IdentityLookup;
  readonly #logger: ClusterLogger;
  readonly #kinds = new Map<string, ClusterKind>();
  readonly #member: LocalMember;
  readonly #members: MemberList;
  readonly #sweeper = new DeadlineSweeper();
  readonly #activations: ActivationRegistry;
  readonly #router: RequestRouter;
  readonly #remoting: ClusterRemoting | undefined;
  readonly #idleCollector: IdleCollector;
  readonly #gossiper: Gossiper;
  /** The deadline of a call that gives none of its own, in ms (`requestTimeout`). */
  readonly requestTimeoutMs: number;
  readonly #idleTimeoutMs: number;
  readonly #maxQueueLength: number;
  /** The longest deadline members accept (`remote.inbound.maxTimeoutMs`), which a kind's `requestTimeout` must not pass; undefined without `remote`. */
  readonly #maxRequestTimeoutMs: number | undefined;
  readonly #drainTimeoutMs: number;
  readonly #gossipEnabled: boolean;
  /** ctx.client's clients, by kind. */
  readonly #boundClients = new Map<string, KindClient<unknown>>();
  /** How this member tells which turn a grain call is made from (`callChains`). */
  readonly callChains: CallChainTracking;
  #state: State = State.Created;
  #stopping: Promise<void> | undefined;

  constructor(options: ClusterOptions) {
    if (typeof options.clusterName !== 'string' || !CLUSTER_NAME.test(options.clusterName)) {
      throw new GrainConfigurationError(`clusterName "${String(options.clusterName)}" is not valid; use letters, digits, ".", "_" and "-".`);
    }
    this.clusterName = options.clusterName;
    const server = serverAddressOf(options.remote, { log: (message) => (options.logger ?? consoleLogger).log(message) });
    // NOTE: a member that serves on a fixed port is known by its address, so its id (and the
    // placement hashed from it) survives restarts; the incarnation tells the runs apart.
    this.memberId = options.memberId ?? (server !== undefined && server.port !== 0 ? hostPort(server.advertisedHost, server.port) : randomUUID());
    this.provider = options.provider ?? new InMemoryProvider();
    this.identityLookup = options.identityLookup ?? new InMemoryIdentityLookup();
    this.#logger = options.logger ?? consoleLogger;
    const requestTimeoutMs = (this.requestTimeoutMs = toMs(options.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT, 'requestTimeout'));
    const maxInboundTimeoutMs = options.remote?.inbound?.maxTimeoutMs ?? DEFAULT_MAX_TIMEOUT_MS;
    this.#maxRequestTimeoutMs = options.remote === undefined ? undefined : maxInboundTimeoutMs;
    if (options.remote !== undefined && requestTimeoutMs > maxInboundTimeoutMs) {
      // NOTE: members refuse calls with a longer deadline (remote.inbound.maxTimeoutMs): every
      // remote call would fail while local ones work. Say so now, not call by call.
      throw new GrainConfigurationError(
        `requestTimeout (${requestTimeoutMs} ms) is longer than members accept (remote.inbound.maxTimeoutMs, ${maxInboundTimeoutMs} ms); raise remote.inbound.maxTimeoutMs on every member, or shorten requestTimeout.`,
      );
    }
    this.#idleTimeoutMs = toMs(options.idleTimeout ?? DEFAULT_IDLE_TIMEOUT, 'idleTimeout');
    const hangTimeoutMs = toMs(options.hangTimeout ?? DEFAULT_HANG_TIMEOUT, 'hangTimeout');
    this.#drainTimeoutMs = toMs(options.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT, 'drainTimeout');
    this.#maxQueueLength = options.maxQueueLength ?? DEFAULT_MAX_QUEUE_LENGTH;
    if (!Number.isInteger(this.#maxQueueLength) || this.#maxQueueLength < 1) {
      throw new GrainConfigurationError('maxQueueLength must be a positive integer.');
    }
    const maxIdentityBytes = options.maxIdentityBytes ?? DEFAULT_MAX_IDENTITY_BYTES;
    if (!Number.isInteger(maxIdentityBytes) || maxIdentityBytes < 1) {
      throw new GrainConfigurationError('maxIdentityBytes must be a positive integer.');
    }

    const callChains = (this.callChains = options.callChains ?? 'references');
    if (callChains !== 'async-local-storage' && callChains !== 'references') {
      throw new GrainConfigurationError(`callChains "${String(callChains)}" is not one of 'references', 'async-local-storage'.`);
    }
    const asyncContext = callChains === 'async-local-storage';
    if (asyncContext && !asyncContextIsCheap()) {
      this.#logger.log(
        `callChains 'async-local-storage' on Node ${process.versions.node}: the first grain turn turns promise hooks on for the whole process, so every await of this app costs more (Node 24, or Node 22 with --experimental-async-context-frame, has no such cost).`,
      );
    }

    const member = (this.#member = new LocalMember(this.clusterName, this.memberId, this.#kinds));
    const members = (this.#members = new MemberList(member, this.#logger));
    const gossipConfig = gossipSettings(options.gossip);
    this.#gossipEnabled = gossipConfig.enabled;
    const fencing = new Fencing(this.identityLookup.turnGuard);
    const logger = this.#logger;
    // NOTE: calls waiting outside a mailbox (for a lookup, a release, a deactivation) are
    // swept like queued ones: they time out at their deadline too, never having run.
    const waiting = new WaitingCalls(this.#sweeper, (call) => call.reject(new GrainTimeoutError(call.kind, call.identity, call.method, call.timeoutMs, true)));
    // NOTE: the parts refer to each other through late-bound arrows: the registry sends calls
    // on through the router, the router delivers to the registry's activations.
    let router!: RequestRouter;
    this.#activations = new ActivationRegistry({
      member,
      kinds: this.#kinds,
      sweeper: this.#sweeper,
      logger,
      fencing,
      waiting,
      hangTimeoutMs,
      requestTimeoutMs,
      asyncContext,
      clientOf: (kind) => this.#boundClientOf(kind),
      redirect: (call) => router.redirect(call),
      ended: (activation, how) => router.released(activation, how),
    });
    const gossiper = (this.#gossiper = new Gossiper({
      member,
      members,
      settings: gossipConfig,
      logger,
      load: () => this.#activations.load(),
      // NOTE: a routing hint only: no new placements there, and callers resolve again (with a
      // leased lookup they find the grain where it is claimed; nothing is released or moved).
      suspicionChanged: (suspect, suspected) => {
        members.setSuspected(suspect.id, suspect.incarnation, suspected);
        if (suspected) router.pidCache.dropMember(suspect.id);
      },
    }));
    if (options.remote !== undefined || !(this.provider instanceof InMemoryProvider)) {
      this.#remoting = new ClusterRemoting(options.remote, server, {
        ...(gossipConfig.enabled && { gossip: gossiper }),
        member,
        fencing,
        sweeper: this.#sweeper,
        logger,
        maxIdentityBytes,
        routing: {
          get running() {
            return router.running;
          },
          redirect: (call) => router.redirect(call),
          forgetPid: (call) => router.forgetPid(call),
          forgetAddress: (address) => router.forgetAddress(address),
          inboundRouteProblem: (request) => router.inboundRouteProblem(request),
          serveInbound: (request, args, replies, respond) => router.serveInbound(request, args, replies, respond),
        },
        // NOTE: only connections this member dialled confirm anything, and only what the
        // provider listed at that address (member-list.ts); a peer's word adds no member.
        peerSeen: (peer: Member, address: string, phase) => {
          this.provider.confirmed?.(address, { ...peer, address }, phase !== 'active');
          if (phase !== 'active') members.markLeaving(peer.id, peer.incarnation, address);
          // NOTE: it has drained: where its grains were is stale now (they are elsewhere or nowhere).
          if (phase === 'closing') router.pidCache.dropMember(peer.id);
        },
      });
    }
    members.onChange((event) => {
      router.membershipChanged(event);
      gossiper.membershipChanged();
      if (event.type === 'left' && event.member.address !== '') this.#remoting?.forget(event.member.address);
      if (event.type === 'changed' && event.previous.address !== event.member.address && event.previous.address !== '') {
        this.#remoting?.forget(event.previous.address);
      }
    });
    // NOTE: callers must learn a new incarnation at once: the provider publishes it, and the
    // members calling this one hear it on their open streams (calls for the old one are
    // answered "not here" for good).
    member.onNewIncarnation = () => {
      this.#remoting?.announce();
      gossiper.renewIncarnation();
      this.provider.selfChanged?.(member.self());
    };
    router = this.#router = new RequestRouter({
      kinds: this.#kinds,
      activations: this.#activations,
      identityLookup: this.identityLookup,
      fencing,
      requestTimeoutMs,
      sender: this.#remoting?.caller,
      waiting,
      maxIdentityBytes,
      hostedElsewhere: (kind) => members.placeable().some((m) => m.id !== member.id && m.kinds.includes(kind)),
      asyncContext,
      ...(options.serializeLocalCalls === true && { localWire: localWireOf(options.remote) }),
    });
    this.#idleCollector = new IdleCollector(
      () => this.#activations.values(),
      () => Math.min(this.#idleTimeoutMs, ...[...this.#kinds.values()].map((k) => k.idleTimeoutMs)),
    );
  }

  /** True when both the provider and the lookup are the in-memory defaults and there is no remote. */
  get isEmbedded(): boolean {
    return this.provider instanceof InMemoryProvider && this.identityLookup instanceof InMemoryIdentityLookup && this.#remoting === undefined;
  }

  /** New on every start and every time the member is fenced and rejoins: tells the runs of a member apart. */
  get incarnation(): string {
    return this.#member.incarnation;
  }

  /** Where this member's remote listens (`host:port`), once started; '' without a server. */
  get remoteAddress(): string {
    return this.#member.address;
  }

  /** The kinds hosted here. */
  get kindNames(): string[] {
    return this.#member.kindNames;
  }

  /** Host a kind on this member. Before `start()` only. */
  registerKind<T extends object>(definition: KindDefinition<T>): void {
    if (this.#state !== State.Created)
      throw new GrainConfigurationError(`Kind "${definition.name}" registered after the cluster started; register kinds before start().`);
    const existing = this.#kinds.get(definition.name);
    if (existing !== undefined) {
      if (existing.definition.grainClass === definition.grainClass) return;
      throw new GrainConfigurationError(
        `Grain kind "${definition.name}" is declared by two classes, "${existing.definition.grainClass.name}" and "${definition.grainClass.name}". Give one of them another kind: @Grain({ kind: '...' }).`,
      );
    }
    this.#kinds.set(
      definition.name,
      new ClusterKind(definition as KindDefinition, {
        idleTimeoutMs: this.#idleTimeoutMs,
        maxQueueLength: this.#maxQueueLength,
        ...(this.#maxRequestTimeoutMs !== undefined && { maxRequestTimeoutMs: this.#maxRequestTimeoutMs }),
      }),
    );
  }

  /**
   * Start serving: the remote (if any), the identity lookup, then the provider (joining the
   * cluster). Calls made meanwhile wait (within their deadlines) until it has started; if it
   * fails to start, they get `ClusterShuttingDownError`.
   */
  async start(): Promise<void> {
    if (this.#state !== State.Created) return;
    this.#state = State.Running;
    this.#router.begin();
    const logger = this.#logger;
    try {
      await this.#remoting?.start();
      await this.identityLookup.setup(
        lookupMemberOf({
          member: this.#member,
          members: this.#members,
          activations: this.#activations,
          kinds: this.#kinds,
          router: this.#router,
          logger,
          load: (memberId) => this.#gossiper.load(memberId),
        }),
      );
      const members = this.#members;
      await this.provider.start({
        clusterName: this.clusterName,
        self: () => this.#member.self(),
        setMembers: (list, complete) => members.update(list, complete),
        probe: (address) => this.#remoting?.probe(address),
        log: (level, message) => logger[level](message),
      });
    } catch (error) {
      this.#state = State.Stopped;
      this.#router.close();
      throw error;
    }
    const remoting = this.#remoting;
    this.#gossiper.start(remoting && { push: (address, bytes) => remoting.pushGossip(address, bytes) });
    this.#router.open();
    this.#idleCollector.start();
  }

  /** The members known now (from the provider), this one included. */
  members(): readonly Member[] {
    return this.#members.all();
  }

  /**
   * Shared member state over gossip: set this member's keys, read and watch every member's,
   * each member's status (alive, suspected, leaving) and heartbeat age, topology consensus.
   */
  get gossip(): ClusterGossip {
    return this.#gossiper;
  }

  /** Whether every member sees the same member set (as gossiped); also in `health()`. */
  topologyConsensus(): TopologyConsensus {
    return this.#gossiper.topologyConsensus();
  }

  /** Be told when members join, leave or change (a new incarnation); returns the function that stops it. */
  onMembershipChange(listener: MembershipListener): () => void {
    return this.#members.onChange(listener);
  }

  /**
   * True while this member is started, knows the membership (the provider reported it),
   * can place grains (its lookup holds a lease, where there is one) and is not leaving.
   */
  get ready(): boolean {
    return this.#state === State.Running && !this.#members.isLeaving && this.#members.known && this.identityLookup.health?.().ready !== false;
  }

  /**
   * Resolves once the member is ready (see `ready`); rejects with ClusterUnavailableError
   * after `timeout` (default: `requestTimeout`), or ClusterShuttingDownError once it stops.
   */
  async whenReady(timeout?: Duration): Promise<void> {
    const timeoutMs = timeout === undefined ? this.requestTimeoutMs : toMs(timeout, 'whenReady timeout', { allowZero: true });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#state === State.Stopping || this.#state === State.Stopped || this.#members.isLeaving) throw new ClusterShuttingDownError();
      if (this.ready) return;
      if (Date.now() >= deadline) {
        throw new ClusterUnavailableError(`Member ${this.memberId} is not ready after ${timeoutMs} ms: ${this.health().detail ?? 'starting'}.`);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(READY_POLL_MS, Math.max(0, deadline - Date.now()))));
    }
  }

  /** What health checks report: readiness, membership, and whether the provider and the lookup can be reached. */
  health(): ClusterHealth {
    const provider = this.provider.health?.() ?? { reachable: true };
    const lookup = this.identityLookup.health?.() ?? { reachable: true, ready: true };
    const ready = this.ready;
    const leaving = this.#members.isLeaving || this.#state === State.Stopping || this.#state === State.Stopped;
    const consensus = this.#gossiper.topologyConsensus();
    const problems: string[] = [];
    if (this.#state === State.Created) problems.push('not started');
    if (leaving) problems.push('leaving the cluster');
    if (!this.#members.known && this.#state === State.Running) problems.push(`membership not known yet (provider ${this.provider.name})`);
    if (!provider.reachable) problems.push(`provider ${this.provider.name} unreachable${provider.detail ? `: ${provider.detail}` : ''}`);
    if (!lookup.ready || !lookup.reachable) problems.push(`identity lookup ${this.identityLookup.name}: ${lookup.detail ?? 'not ready'}`);
    return {
      ready,
      leaving,
      members: this.#members.size,
      membershipKnown: this.#members.known,
      provider: { name: this.provider.name, reachable: provider.reachable, ...(provider.detail !== undefined && { detail: provider.detail }) },
      identityLookup: {
        name: this.identityLookup.name,
        reachable: lookup.reachable,
        ready: lookup.ready,
        ...(lookup.detail !== undefined && { detail: lookup.detail }),
      },
      gossip: {
        enabled: this.#gossipEnabled,
        topologyConsensus: consensus.consensus,
        topologyHash: consensus.hash,
        suspected: this.#gossiper
          .members()
          .filter((m) => m.status === 'suspected')
          .map((m) => m.id),
      },
      ...(problems.length > 0 && { detail: problems.join('; ') }),
    };
  }

  stats(): ClusterStats {
    const { size, hits, misses } = this.#router.pidCache;
    return { activations: this.#activations.size, ...this.#activations.counters, pidCache: { size, hits, misses } };
  }

  /**
   * A typed client for `kind`, hosted here or elsewhere. A call that gives no `timeout` gets the
   * kind's `requestTimeout` when this member hosts the kind, else the cluster's.
   */
  client<T>(kind: string): GrainClient<T> {
    return new KindClient<T>(this.#router, kind);
  }

  #boundClientOf(kind: string): KindClient<unknown> {
    let client = this.#boundClients.get(kind);
    if (client === undefined) this.#boundClients.set(kind, (client = new KindClient<unknown>(this.#router, kind)));
    return client;
  }

  /** Call a grain method by name; what a client's references do. */
  request(kind: string, identity: string, method: string, args: unknown[], options?: GrainCallOptions): Promise<unknown> {
    try {
      const timeoutMs = options?.timeout === undefined ? undefined : toMs(options.timeout, 'timeout');
      return this.#router.invoke(kind, identity, method, args, timeoutMs, options?.signal);
    } catch (error) {
      return Promise.reject(error instanceof GrainError ? new InvalidGrainCallError(error.message) : error);
    }
  }

  /**
   * Leave the cluster gracefully: stop new placements here (the provider deregisters this
   * member, callers are told it is leaving), let calls in flight finish, deactivate every
   * activation (queued calls run, hooks run, entries released) within the drain timeout, tell
   * callers it has drained and wait for them to hang up, then stop. Calls made here meanwhile
   * go to the other members; once the member has stopped they get `ClusterShuttingDownError`.
   */
  shutdown(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const wasRunning = this.#state === State.Running;
    this.#state = State.Stopping;
    this.#idleCollector.stop();
    if (wasRunning) {
      // NOTE: the order is the guarantee. Placements stop first (here and at the callers), so
      // nothing new arrives; the grains drain while calls for them are still served; only
      // then are callers told to hang up, and they do once their last answer came.
      this.#members.leave();
      this.#gossiper.leave();
      this.#activations.leave();
      this.#router.leave();
      this.#remoting?.leaving();
      await this.#leaveProvider();
      await this.#drain();
      await this.#remoting?.close(Math.min(this.#drainTimeoutMs, MAX_CLOSE_GRACE_MS));
      this.#gossiper.stop();
      this.#router.close();
      await this.identityLookup.shutdown();
      await this.provider.shutdown();
      await this.#remoting?.shutdown();
    } else {
      this.#gossiper.stop();
      this.#router.close();
    }
    // NOTE: the sweeper is not stopped: a turn dropped past the drain timeout may still be
    // running, and its caller still times out at its deadline. It stops by itself once
    // nothing is left to watch, and never keeps the process alive.
    this.#state = State.Stopped;
  }

  async #leaveProvider(): Promise<void> {
    try {
      await this.provider.leave?.();
    } catch (error) {
      this.#logger.warn(`Shutdown: provider ${this.provider.name} could not deregister this member: ${(error as Error).message}`);
    }
  }

  /** Deactivate every activation gracefully; past the drain timeout, drop what is left. */
  async #drain(): Promise<void> {
    const drained = (async () => {
      // NOTE: a call already under way may still activate a grain here; drain until none is left.
      for (let all = [...this.#activations.values()]; all.length > 0; all = [...this.#activations.values()]) {
        await Promise.all(all.map((a) => a.deactivate('shutdown')));
      }
    })();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      drained.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), this.#drainTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      const left = [...this.#activations.values()];
      this.#logger.warn(
        `Shutdown: ${left.length} activation(s) did not finish within drainTimeout (${this.#drainTimeoutMs} ms); dropped without waiting further.`,
      );
      for (const activation of left) activation.forceStop();
    }
  }
}
