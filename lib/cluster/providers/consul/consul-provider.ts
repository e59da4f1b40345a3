import { type Duration, toMs } from '../../duration.js';
import { ClusterShuttingDownError, GrainConfigurationError } from '../../errors.js';
import type { ClusterProvider, Member, ProviderHealth, ProviderMember } from '../cluster-provider.js';
import { ConsulApi, ConsulCall, type ConsulFailure, describeFailure, type HealthServiceReply } from './consul-client.js';
import { type ConsulRegistration, goDuration, registrationOf } from './consul-registration.js';
import { byId, countedMembers, membersSignature, readHealthReply, type SkippedEntry } from './consul-reply.js';

/** Options of `ConsulProvider`. Every field has a default. */
export interface ConsulProviderOptions {
  /**
   * The Consul agent's HTTP address, `http://` or `https://` (a path prefix, for an agent behind
   * a proxy, is kept). Talk to the agent on the member's own node: registrations belong to the
   * agent they are made on. @default 'http://127.0.0.1:8500' (Consul's default client address)
   */
  url?: string;
  /**
   * ACL token, sent as `X-Consul-Token`. Needs `service:write` on the service name and
   * `service:read` + `node:read` for the watch. Without one, an ACL-enforcing Consul refuses
   * registration (403) and filters the member list to nothing. @default none (the agent's default token)
   */
  token?: string;
  /** Datacenter to watch, when not the agent's own. @default the agent's datacenter */
  datacenter?: string;
  /**
   * The Consul service the members register under and watch: one per cluster. Letters, digits,
   * `.`, `_` and `-`. @default the cluster name (`ClusterOptions.clusterName`)
   */
  serviceName?: string;
  /**
   * TTL of the member's health check; the member passes it every ttl/3, so one lost or slow
   * pass does not turn it critical (which makes others stop counting it). At least 1s. Shorter
   * notices dead members sooner but counts a member stalled longer than ttl as dead. @default '10s'
   */
  ttl?: Duration;
  /**
   * How long Consul keeps a member's entry after its check turned critical before removing
   * it (a crashed member leaves no entry behind). Consul raises values below 1m to 1m (its
   * minimum); such a value is sent as given, with a warning at start. @default '1m'
   */
  deregisterCriticalAfter?: Duration;
  /**
   * How long one blocking watch request waits for a change before Consul answers anyway. A
   * change wakes it at once whatever the value; longer means fewer idle requests. At most 10m
   * (Consul's cap), at least 1s. @default '20s'
   */
  watchWait?: Duration;
  /**
   * Timeout of the non-blocking calls (register, pass, deregister); a blocking watch request
   * is given watchWait + watchWait/16 (Consul's jitter) + this. @default '5s'
   */
  requestTimeout?: Duration;
  /** First delay before retrying a failed call; it doubles per failure, with jitter. @default '200ms' */
  retryBackoffMin?: Duration;
  /** Longest delay between retries while Consul cannot be reached. @default '5s' */
  retryBackoffMax?: Duration;
}

const DEFAULT_URL = 'http://127.0.0.1:8500';
const DEFAULT_TTL = '10s';
const DEFAULT_DEREGISTER_CRITICAL_AFTER = '1m';
const DEFAULT_WATCH_WAIT = '20s';
const DEFAULT_REQUEST_TIMEOUT = '5s';
const DEFAULT_RETRY_BACKOFF_MIN = '200ms';
const DEFAULT_RETRY_BACKOFF_MAX = '5s';

/** Consul raises DeregisterCriticalServiceAfter below this to this. */
const CONSUL_MIN_DEREGISTER_CRITICAL_AFTER_MS = 60_000;
/** Consul caps a blocking query's wait at 10 minutes. */
const CONSUL_MAX_WAIT_MS = 600_000;
const MIN_TTL_MS = 1_000;
const MIN_WATCH_WAIT_MS = 1_000;
/** The watch loop sends at most one request per this interval (Consul asks clients to rate-limit). */
const WATCH_MIN_INTERVAL_MS = 100;
/** Skipped entries named per warning; the rest are counted. */
const SKIPPED_NAMED_PER_WARNING = 5;

const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const DATACENTER = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const TOKEN = /^[\x21-\x7e]+$/;

type Source = 'registration' | 'watch';

interface Failing {
  readonly operation: string;
  readonly failure: ConsulFailure;
  readonly since: number;
  /** `unavailable` for network errors, timeouts, 5xx and 429; else the HTTP status. */
  readonly kind: string;
}

/** A promise settled once, from outside. */
class Latch {
  settled = false;
  readonly promise: Promise<void>;
  private settle!: (error?: Error) => void;

  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.settle = (error) => (error === undefined ? resolve() : reject(error));
    });
    // NOTE: start() awaits it; a rejection nobody awaits yet must not be reported as unhandled.
    this.promise.catch(() => undefined);
  }

  resolve(): void {
    if (this.settled) return;
    this.settled = true;
    this.settle();
  }

  reject(error: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.settle(error);
  }
}

/**
 * Membership through Consul, in the way of Proto.Actor's Consul provider. A serving member
 * registers one service instance per incarnation (`PUT /v1/agent/service/register`, Meta =
 * member id, incarnation, kinds) with a TTL check it passes every ttl/3; every member watches
 * the service with a blocking `GET /v1/health/service/<name>` and counts the instances whose
 * checks all pass. A client-only member (no address) only watches.
 *
 * `start` resolves once this member is registered (when it serves) and the first member list
 * was reported. While Consul cannot be reached it keeps retrying, with backoff, and `start`
 * waits (there is no membership to start with); it rejects with a GrainConfigurationError
 * only on answers that retrying will not change (400, 401, 403: a bad request or ACL token;
 * an unknown datacenter).
 * Later, an unreachable Consul keeps the last member list (never everyone dead), logs one
 * warning and one line when it answers again, and `health()` says so meanwhile.
 */
export class ConsulProvider implements ClusterProvider {
  readonly name = 'consul';
  private readonly api: ConsulApi;
  private readonly url: string;
  private readonly token: string | undefined;
  private readonly configuredServiceName: string | undefined;
  private readonly ttlMs: number;
  private readonly passIntervalMs: number;
  private readonly deregisterCriticalAfterMs: number;
  private readonly watchWait: string;
  private readonly watchTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly backoffMinMs: number;
  private readonly backoffMaxMs: number;

  private member: ProviderMember | undefined;
  private serviceName = '';
  private phase: 'new' | 'starting' | 'running' | 'stopped' = 'new';
  private readonly stopping = new AbortController();
  private readonly registered = new Latch();
  private readonly listed = new Latch();

  /** What should be registered now (undefined for a client-only member, and after leave). */
  private desired: ConsulRegistration | undefined;
  /** What Consul confirmed registered, and this provider passes. */
  private current: ConsulRegistration | undefined;
  /** Service ids Consul may hold for this member: registered, or sent and not known refused. */
  private readonly maybeRegistered = new Set<string>();
  private keepTimer: NodeJS.Timeout | undefined;
  private keepRun: Promise<void> | undefined;
  private keepCall: ConsulCall | undefined;
  private keepAgain = false;
  private keepFailures = 0;
  private left = false;
  private leaving: Promise<void> | undefined;
  private stopped: Promise<void> | undefined;

  private watchLoop: Promise<void> | undefined;
  private watchCall: ConsulCall | undefined;
  private reported: readonly Member[] | undefined;
  private reportedSignature: string | undefined;
  private latest: readonly Member[] = [];
  private holding = false;
  private holdTimer: NodeJS.Timeout | undefined;
  private warnedSkips = new Set<string>();
  private warnedFilteredReads = false;

  private readonly failing = new Map<Source, Failing>();
  private startRefused = false;

  constructor(options: ConsulProviderOptions = {}) {
    const { baseUrl, display } = parseUrl(options.url ?? DEFAULT_URL);
    this.url = display;
    if (options.token !== undefined && (typeof options.token !== 'string' || !TOKEN.test(options.token))) {
      throw new GrainConfigurationError('ConsulProvider token: must be a non-empty ACL secret (visible ASCII characters, no spaces).');
    }
    this.token = options.token;
    if (options.datacenter !== undefined && (typeof options.datacenter !== 'string' || !DATACENTER.test(options.datacenter))) {
      throw new GrainConfigurationError(
        `ConsulProvider datacenter: "${String(options.datacenter)}" is not a datacenter name (letters, digits, ".", "_", "-").`,
      );
    }
    if (options.serviceName !== undefined) checkServiceName(options.serviceName, 'ConsulProvider serviceName');
    this.configuredServiceName = options.serviceName;

    this.ttlMs = toMs(options.ttl ?? DEFAULT_TTL, 'ConsulProvider ttl');
    if (this.ttlMs < MIN_TTL_MS)
      throw new GrainConfigurationError(`ConsulProvider ttl: ${String(options.ttl)} is below 1s; a member would flap out of the cluster on any pause.`);
    this.passIntervalMs = this.ttlMs / 3;
    this.deregisterCriticalAfterMs = toMs(options.deregisterCriticalAfter ?? DEFAULT_DEREGISTER_CRITICAL_AFTER, 'ConsulProvider deregisterCriticalAfter');
    const waitMs = toMs(options.watchWait ?? DEFAULT_WATCH_WAIT, 'ConsulProvider watchWait');
    if (waitMs < MIN_WATCH_WAIT_MS || waitMs > CONSUL_MAX_WAIT_MS) {
      throw new GrainConfigurationError(
        `ConsulProvider watchWait: ${String(options.watchWait)} must be from 1s to 10m (Consul caps a blocking query's wait at 10m).`,
      );
    }
    this.watchWait = goDuration(waitMs);
    this.requestTimeoutMs = toMs(options.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT, 'ConsulProvider requestTimeout');
    // NOTE: Consul adds up to wait/16 of jitter to a blocking query; the client must wait longer still.
    this.watchTimeoutMs = waitMs + Math.ceil(waitMs / 16) + this.requestTimeoutMs;
    this.backoffMinMs = toMs(options.retryBackoffMin ?? DEFAULT_RETRY_BACKOFF_MIN, 'ConsulProvider retryBackoffMin');
    this.backoffMaxMs = toMs(options.retryBackoffMax ?? DEFAULT_RETRY_BACKOFF_MAX, 'ConsulProvider retryBackoffMax');
    if (this.backoffMaxMs < this.backoffMinMs) {
      throw new GrainConfigurationError(
        `ConsulProvider retryBackoffMax: ${String(options.retryBackoffMax ?? DEFAULT_RETRY_BACKOFF_MAX)} is below retryBackoffMin (${String(options.retryBackoffMin ?? DEFAULT_RETRY_BACKOFF_MIN)}).`,
      );
    }
    this.api = new ConsulApi(baseUrl, this.token, options.datacenter);
  }

  /**
   * Register this member (when it serves) and start watching. Resolves once registered and
   * the first member list was reported; waits while Consul cannot be reached; rejects with a
   * GrainConfigurationError when Consul refuses for good (bad token, bad request, unknown
   * datacenter) or for a member that cannot be registered (an address Consul refuses, a
   * member id or kind list too long for Consul's Meta).
   */
  async start(member: ProviderMember): Promise<void> {
    if (this.phase !== 'new') throw new GrainConfigurationError('ConsulProvider: start() was called twice or after shutdown; use one provider per member.');
    this.phase = 'starting';
    this.member = member;
    try {
      this.serviceName =
        this.configuredServiceName ?? checkServiceName(member.clusterName, 'ConsulProvider: the cluster name, used as the Consul service name,');
      const self = member.self();
      if (self.address !== '' && !this.left) {
        this.desired = registrationOf(self, this.serviceName, this.ttlMs, this.deregisterCriticalAfterMs);
        if (this.deregisterCriticalAfterMs < CONSUL_MIN_DEREGISTER_CRITICAL_AFTER_MS) {
          this.log(
            'warn',
            `deregisterCriticalAfter ${this.desired.deregisterCriticalServiceAfter} is below Consul's minimum of 1m; Consul will keep a dead member's entry for 1m (plus up to 30s until its reaper runs).`,
          );
        }
      }
    } catch (error) {
      this.phase = 'stopped';
      throw error;
    }
    this.watchLoop = this.watch().catch((error: unknown) => this.log('warn', `the member watch stopped: ${String(error)}`));
    if (this.desired !== undefined) this.runKeep();
    else this.registered.resolve();
    try {
      await Promise.all([this.registered.promise, this.listed.promise]);
    } catch (error) {
      await this.shutdown();
      throw error;
    }
    if (this.phase === 'starting') this.phase = 'running';
  }

  /** A new incarnation: register it at once, deregister the old instance (404 tolerated), pass the new check from now on. */
  selfChanged(self: Member): void {
    if (this.left || this.member === undefined || this.phase === 'stopped' || self.address === '') return;
    let next: ConsulRegistration;
    try {
      next = registrationOf(self, this.serviceName, this.ttlMs, this.deregisterCriticalAfterMs);
    } catch (error) {
      this.log('warn', `cannot register the member's new state: ${(error as Error).message}`);
      return;
    }
    const previous = this.desired;
    if (previous !== undefined && membersSignature([previous.member]) === membersSignature([next.member])) return;
    this.desired = next;
    this.log(
      'log',
      `member ${self.id} has a new incarnation ${self.incarnation}; registering it as ${next.serviceId}${previous === undefined ? '' : ` in place of ${previous.serviceId}`}.`,
    );
    // NOTE: a pass of the old check in flight is not worth waiting for: the old instance is about to go.
    this.keepCall?.cancel();
    this.kickNow();
  }

  /**
   * Stop passing and deregister this member's instances (404 tolerated); the watch keeps
   * reporting members, so the leaving member still routes its own calls. Never rejects: a
   * failure is logged, and Consul drops the instance once its check turns critical.
   */
  leave(): Promise<void> {
    return (this.leaving ??= this.deregisterAll());
  }

  /** Leave (if not left), abort the blocking watch request, clear the timers. Idempotent. */
  shutdown(): Promise<void> {
    return (this.stopped ??= this.stop());
  }

  /** Unreachable while a call to Consul is failing (the last member list is kept meanwhile), with what fails since when. */
  health(): ProviderHealth {
    if (this.phase === 'new') return { reachable: false, detail: 'not started' };
    if (this.phase === 'stopped') return { reachable: false, detail: 'shut down' };
    const oldest = [...this.failing.values()].sort((a, b) => a.since - b.since)[0];
    if (oldest !== undefined) {
      const members = this.reported === undefined ? 'no member list yet' : `keeping the last member list (${this.reported.length} members)`;
      return {
        reachable: false,
        detail: `Consul at ${this.url}: ${oldest.operation} failing since ${new Date(oldest.since).toISOString()}: ${oldest.failure.text}; ${members}`,
      };
    }
    if (this.reported === undefined) return { reachable: false, detail: `waiting for Consul at ${this.url} to answer` };
    return { reachable: true };
  }

  // ---- registration: register, pass every ttl/3, re-register on 404, deregister old incarnations

  private runKeep(): void {
    clearTimeout(this.keepTimer);
    this.keepTimer = undefined;
    this.keepAgain = false;
    this.keepRun = this.keepOnce().then((delay) => {
      this.keepRun = undefined;
      if (this.left || this.stopping.signal.aborted) return;
      const next = this.keepAgain ? 0 : delay;
      this.keepTimer = setTimeout(() => this.runKeep(), next);
      this.keepTimer.unref();
    });
  }

  private kickNow(): void {
    if (this.left || this.stopping.signal.aborted) return;
    if (this.keepRun !== undefined) this.keepAgain = true;
    else this.runKeep();
  }

  /** One round of keeping the registration; never rejects. Resolves with the delay until the next. */
  private async keepOnce(): Promise<number> {
    const call = new ConsulCall();
    this.keepCall = call;
    try {
      await this.reconcile(call);
      this.keepFailures = 0;
      this.reached('registration');
      this.registered.resolve();
      return this.passIntervalMs;
    } catch (error) {
      if (call.canceled || this.left) return 0;
      const failure = describeFailure(error);
      const operation = this.desired === undefined ? 'deregistering old instances' : `keeping this member registered as ${this.desired.serviceId}`;
      if (!this.registered.settled && isPermanent(failure)) {
        this.registered.reject(this.refuseStart(operation, failure));
        return this.passIntervalMs;
      }
      this.unreached('registration', operation, failure);
      this.keepFailures++;
      return Math.min(this.backoff(this.keepFailures), this.passIntervalMs);
    } finally {
      if (this.keepCall === call) this.keepCall = undefined;
    }
  }

  /** Bring Consul to `desired`: register it (or pass its check), then deregister every other instance. */
  private async reconcile(call: ConsulCall): Promise<void> {
    const want = this.desired;
    if (want !== undefined && this.current?.serviceId === want.serviceId) {
      try {
        await this.api.pass(want.checkId, Math.min(this.requestTimeoutMs, this.ttlMs / 2), call);
      } catch (error) {
        if (describeFailure(error).status !== 404) throw error;
        this.current = undefined;
        this.log('log', `Consul no longer knows check ${want.checkId} (reaped after its TTL expired, or the agent restarted and lost it); registering again.`);
      }
    }
    if (want !== undefined && this.current?.serviceId !== want.serviceId) {
      this.maybeRegistered.add(want.serviceId);
      try {
        await this.api.register(want, this.requestTimeoutMs, call);
      } catch (error) {
        // NOTE: an answer (not a lost connection) means Consul did not register it.
        if (describeFailure(error).status !== undefined) this.maybeRegistered.delete(want.serviceId);
        throw error;
      }
      this.current = want;
      this.log(
        'log',
        `registered member ${want.member.id} as ${want.serviceId} (${want.member.address}) in Consul service "${want.serviceName}", TTL ${want.ttl}.`,
      );
    }
    for (const serviceId of [...this.maybeRegistered]) {
      if (serviceId === this.desired?.serviceId) continue;
      try {
        await this.api.deregister(serviceId, this.requestTimeoutMs, call);
      } catch (error) {
        // NOTE: 404: already gone (reaped, or never registered); that is what deregistering wants.
        if (describeFailure(error).status !== 404) throw error;
      }
      this.maybeRegistered.delete(serviceId);
      if (this.current?.serviceId === serviceId) this.current = undefined;
    }
  }

  private async deregisterAll(): Promise<void> {
    this.left = true;
    this.desired = undefined;
    clearTimeout(this.keepTimer);
    this.keepTimer = undefined;
    this.keepCall?.cancel();
    await this.keepRun;
    this.failing.delete('registration');
    // NOTE: a start still waiting to register has nothing left to wait for.
    this.registered.resolve();
    if (this.maybeRegistered.size === 0) return;
    const ids = [...this.maybeRegistered].join(', ');
    try {
      await this.reconcile(new ConsulCall());
      this.log('log', `deregistered ${ids} from Consul.`);
    } catch (error) {
      this.log(
        'warn',
        `could not deregister ${ids} from Consul at ${this.url} (${describeFailure(error).text}); its check is no longer passed, so others stop counting it within ${goDuration(this.ttlMs)} and Consul removes it after deregisterCriticalAfter.`,
      );
    }
  }

  private async stop(): Promise<void> {
    const shutDown = new ClusterShuttingDownError('was shut down before Consul answered');
    this.registered.reject(shutDown);
    this.listed.reject(shutDown);
    await this.leave();
    this.stopping.abort();
    this.watchCall?.cancel();
    clearTimeout(this.holdTimer);
    await this.watchLoop;
    this.api.destroy();
    this.phase = 'stopped';
  }

  // ---- the watch: a blocking query on the service's health, reported when it changes

  private async watch(): Promise<void> {
    let index = 0n;
    let failures = 0;
    let lastStart = 0;
    while (!this.stopping.signal.aborted) {
      await this.sleep(lastStart + WATCH_MIN_INTERVAL_MS - Date.now());
      if (this.stopping.signal.aborted) break;
      lastStart = Date.now();
      const call = new ConsulCall();
      this.watchCall = call;
      const operation = `watching service "${this.serviceName}"`;
      let reply: HealthServiceReply | undefined;
      let failure: ConsulFailure | undefined;
      try {
        reply = await this.api.healthService(this.serviceName, String(index), this.watchWait, this.watchTimeoutMs, call);
      } catch (error) {
        if (call.canceled || this.stopping.signal.aborted) break;
        failure = describeFailure(error);
      } finally {
        if (this.watchCall === call) this.watchCall = undefined;
      }
      const entries = reply === undefined ? undefined : readHealthReply(reply.body);
      if (reply === undefined || entries === undefined) {
        failure ??= { status: undefined, text: 'Consul answered the health query with something other than a JSON array', aborted: false, invalid: false };
        if (!this.listed.settled && isPermanent(failure)) {
          this.listed.reject(this.refuseStart(operation, failure));
          return;
        }
        failures++;
        // NOTE: after a failure, the next query does not block: the agent may have restarted
        // with a lower index, and a blocking query on the old one would wait out its wait.
        index = 0n;
        this.unreached('watch', operation, failure);
        await this.sleep(this.backoff(failures));
        continue;
      }
      const recovered = failures > 0;
      failures = 0;
      this.reached('watch');
      // Blocking-query index rules (Consul docs, "Implementation Details"): 0 or garbage is
      // taken as 1; an index that went backwards means Consul lost or reset its state: start
      // over with a non-blocking query.
      const sent = index;
      const received = reply.index !== undefined && /^\d+$/.test(reply.index) ? BigInt(reply.index) : 0n;
      index = received < 1n ? 1n : received;
      const wentBack = sent > 0n && index < sent;
      if (wentBack) index = 0n;
      if ((recovered || wentBack) && this.reported !== undefined) this.holdRemovals();
      this.warnSkipped(entries.skipped);
      if (entries.instances.length === 0 && entries.skipped.length === 0) this.hintFilteredReads(reply.defaultAclPolicy);
      this.report(countedMembers(entries.instances));
    }
  }

  /** Report the list when it changed (always the first time). */
  private report(fresh: readonly Member[]): void {
    this.latest = fresh;
    let members = fresh;
    if (this.holding && this.reported !== undefined) {
      const ids = new Set(fresh.map((m) => m.id));
      const held = this.reported.filter((m) => !ids.has(m.id));
      if (held.length > 0) members = [...fresh, ...held].sort(byId);
    }
    const signature = membersSignature(members);
    if (signature !== this.reportedSignature && this.member !== undefined && !this.stopping.signal.aborted) {
      this.reported = members;
      this.reportedSignature = signature;
      try {
        this.member.setMembers(members, true);
      } catch (error) {
        this.log('warn', `setMembers threw: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    this.listed.resolve();
  }

  /**
   * After Consul answers again (or its index went back: it lost its state), keep members
   * missing from its list for one TTL: within that time each live member finds its check gone
   * (404) and registers again. A restarted agent's empty list never reads as everyone dead.
   */
  private holdRemovals(): void {
    this.holding = true;
    clearTimeout(this.holdTimer);
    this.holdTimer = setTimeout(() => {
      this.holding = false;
      this.report(this.latest);
    }, this.ttlMs);
    this.holdTimer.unref();
  }

  /** Warn of each skipped entry once while it stays in the reply (not on every poll). */
  private warnSkipped(skipped: readonly SkippedEntry[]): void {
    const keys = new Set<string>();
    const fresh: SkippedEntry[] = [];
    for (const entry of skipped) {
      const key = `${entry.serviceId}\u0000${entry.reason}`;
      keys.add(key);
      if (!this.warnedSkips.has(key)) fresh.push(entry);
    }
    this.warnedSkips = keys;
    if (fresh.length === 0) return;
    const named = fresh.slice(0, SKIPPED_NAMED_PER_WARNING).map((e) => `"${e.serviceId}" (${e.reason})`);
    const more = fresh.length > named.length ? `; and ${fresh.length - named.length} more` : '';
    this.log('warn', `ignoring ${fresh.length} instance(s) of Consul service "${this.serviceName}" that do not hold a member: ${named.join('; ')}${more}.`);
  }

  private hintFilteredReads(defaultAclPolicy: string | undefined): void {
    if (this.token !== undefined || this.warnedFilteredReads || defaultAclPolicy?.toLowerCase() !== 'deny') return;
    this.warnedFilteredReads = true;
    this.log(
      'warn',
      `Consul at ${this.url} enforces ACLs (default policy deny) and no token is set: it filters what this member reads, so the cluster looks empty. Set ConsulProviderOptions.token.`,
    );
  }

  // ---- reachability: one warning when Consul cannot be reached, one line when it answers again

  private unreached(source: Source, operation: string, failure: ConsulFailure): void {
    const wasReachable = this.failing.size === 0;
    const previous = this.failing.get(source);
    const kind = failure.status === undefined || failure.status >= 500 || failure.status === 429 ? 'unavailable' : String(failure.status);
    this.failing.set(source, { operation, failure, since: previous?.since ?? Date.now(), kind });
    const retrying = `Retrying every ${goDuration(this.backoffMinMs)} to ${goDuration(this.backoffMaxMs)}; the last member list is kept meanwhile.`;
    if (kind === 'unavailable') {
      if (wasReachable) this.log('warn', `Consul at ${this.url} cannot be reached (${operation}: ${failure.text}). ${retrying}`);
    } else if (previous?.kind !== kind) {
      const hint = failure.status === 403 ? ` ${this.aclHint()}` : '';
      this.log('warn', `Consul at ${this.url} refused ${operation}: ${failure.text}.${hint} ${retrying}`);
    }
  }

  private reached(source: Source): void {
    const entry = this.failing.get(source);
    if (entry === undefined) return;
    this.failing.delete(source);
    if (this.failing.size === 0) this.log('log', `Consul at ${this.url} answers again (after ${((Date.now() - entry.since) / 1000).toFixed(1)}s).`);
  }

  private aclHint(): string {
    return (
      (this.token === undefined
        ? 'The ACL token is missing: set ConsulProviderOptions.token.'
        : 'The ACL token in ConsulProviderOptions.token is unknown to Consul or lacks permission.') +
      ` It needs service:write on "${this.serviceName}", and service:read and node:read to watch.`
    );
  }

  /** Why start fails for good; logged too (once), for operators who read the logs rather than the error. */
  private refuseStart(operation: string, failure: ConsulFailure): GrainConfigurationError {
    const hint =
      failure.status === 403
        ? ` ${this.aclHint()}`
        : failure.invalid
          ? ''
          : ' Retrying will not help; check the provider options and the address the member advertises.';
    const message = `Consul at ${this.url} refused ${operation}: ${failure.text}.${hint}`;
    if (!this.registered.settled || !this.listed.settled) {
      if (!this.startRefused) this.log('warn', `${message} start() fails.`);
      this.startRefused = true;
    }
    return new GrainConfigurationError(`ConsulProvider: ${message}`);
  }

  // ---- small helpers

  /** Retry delay after `attempt` failures: doubling from the minimum, capped, with jitter. */
  private backoff(attempt: number): number {
    const base = Math.min(this.backoffMaxMs, this.backoffMinMs * 2 ** Math.min(attempt - 1, 30));
    return Math.max(this.backoffMinMs, base * (0.5 + Math.random() * 0.5));
  }

  /** Wait, cut short by shutdown. */
  private sleep(ms: number): Promise<void> {
    const signal = this.stopping.signal;
    if (ms <= 0 || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  private log(level: 'log' | 'warn', message: string): void {
    this.member?.log(level, `ConsulProvider: ${message}`);
  }
}

/**
 * 400, 401 and 403, an unknown datacenter (500 `No path to datacenter`), and a call the
 * client refused do not get better by retrying.
 */
function isPermanent(failure: ConsulFailure): boolean {
  if (failure.status === 500) return /No path to datacenter/i.test(failure.text);
  return failure.invalid || failure.status === 400 || failure.status === 401 || failure.status === 403;
}

function checkServiceName(name: string, option: string): string {
  if (typeof name !== 'string' || !SERVICE_NAME.test(name)) {
    throw new GrainConfigurationError(
      `${option} "${String(name)}" is not a valid Consul service name; use letters, digits, ".", "_" and "-", starting with a letter or digit.`,
    );
  }
  return name;
}

/** The client's base URL (`…/v1`) and the URL for logs (without credentials). */
function parseUrl(url: string): { baseUrl: string; display: string } {
  // NOTE: a URL may carry credentials (user:password@): errors show it without them, or not at all.
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new GrainConfigurationError(`ConsulProvider url is not a URL (not shown: it may hold credentials); use one such as "${DEFAULT_URL}".`);
  }
  const shown = `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new GrainConfigurationError(`ConsulProvider url: "${shown}" must be http:// or https:// (Consul's HTTP API).`);
  }
  if (parsed.search !== '' || parsed.hash !== '') {
    throw new GrainConfigurationError(
      `ConsulProvider url: "${shown}" must not have a query or fragment; set the token and datacenter through their own options.`,
    );
  }
  const path = parsed.pathname.replace(/\/+$/, '');
  const display = `${parsed.protocol}//${parsed.host}${path}`;
  parsed.pathname = `${path}/v1`;
  return { baseUrl: parsed.toString(), display };
}
