import type { Call } from '../../actor/call.js';
import type { DeadlineSweeper } from '../../actor/deadline-sweeper.js';
import type { MailboxSettings } from '../../actor/mailbox.js';
import type { Pid } from '../../actor/pid.js';
import type { WaitingCalls } from '../../actor/waiting-calls.js';
import { MemberMetrics } from '../../observability/member-metrics.js';
import { ClusterShuttingDownError, UnknownKindError } from '../errors.js';
import type { Fencing } from '../fencing.js';
import type { ClusterKind } from '../kind.js';
import type { KindClient } from '../kind-client.js';
import type { LocalMember } from '../local-member.js';
import type { ClusterLogger } from '../logger.js';
import { Activation, type ActivationHost, type StopKind } from './activation.js';

/** Activations whose mailboxes a heartbeat looks at, at most (activation-registry.ts `load`). */
const MAX_DEPTH_WALK = 10_000;
/** Retired activation ids remembered per incarnation; an older one can only be re-used after this many fences. */
const MAX_RETIRED = 10_000;

/** What the registry needs from the rest of the member: what its activations need of their host, and more. */
export interface ActivationRegistryDeps extends Pick<
  ActivationHost,
  'sweeper' | 'logger' | 'fencing' | 'waiting' | 'hangTimeoutMs' | 'requestTimeoutMs' | 'asyncContext' | 'clientOf'
> {
  readonly member: LocalMember;
  readonly kinds: ReadonlyMap<string, ClusterKind>;
  /** Send a call that never ran on to wherever its grain is now (the request router). */
  redirect(call: Call): void;
  /** An activation ended: release its claim unless it was fenced (the request router). */
  ended(activation: Activation, how: StopKind): void;
}

/** Counters of activations since start. */
export interface ActivationCounters {
  activated: number;
  deactivated: number;
  poisoned: number;
  fenced: number;
}

/**
 * This member's process registry for grains: the live activations by `kind/identity`, how
 * they are created and forgotten, fencing them all at once, and the counters behind stats.
 */
export class ActivationRegistry implements ActivationHost {
  /**
   * Live activations by kind, then identity. NOTE: two levels, not one map by `kind/identity`:
   * a peer's request brings a fresh identity string, and a key made from it is a new string
   * that V8 must flatten and hash on every call; the identity alone hashes cheaply. A local
   * reference's kind and identity strings are hashed once, so its two lookups stay cheap.
   */
  private readonly byKind = new Map<string, Map<string, Activation>>();
  private sequence = 0;
  private idPrefix = '';
  private readonly settingsByKind = new Map<ClusterKind, MailboxSettings>();
  /** The incarnation `idPrefix` was made for. */
  private idPrefixOf = '';
  private leaving = false;
  /** Ids of this incarnation's activations that ended fenced, their claims not released (oldest first, bounded). */
  private readonly retired = new Set<string>();
  readonly counters: ActivationCounters = { activated: 0, deactivated: 0, poisoned: 0, fenced: 0 };
  /** Activations and mailbox depth per kind (observed), fences; when an OpenTelemetry SDK records (lib/observability). */
  private readonly metrics = new MemberMetrics(this);
  delivered = 0;
  readonly memberId: string;
  readonly sweeper: DeadlineSweeper;
  readonly logger: ClusterLogger;
  readonly fencing: Fencing;
  readonly waiting: WaitingCalls;
  readonly hangTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly asyncContext: boolean;

  constructor(private readonly deps: ActivationRegistryDeps) {
    this.memberId = deps.member.id;
    this.sweeper = deps.sweeper;
    this.logger = deps.logger;
    this.fencing = deps.fencing;
    this.waiting = deps.waiting;
    this.hangTimeoutMs = deps.hangTimeoutMs;
    this.requestTimeoutMs = deps.requestTimeoutMs;
    this.asyncContext = deps.asyncContext;
  }

  clientOf(kind: string): KindClient<unknown> {
    return this.deps.clientOf(kind);
  }

  /** The local activation of `kind/identity`, if any. */
  get(kind: string, identity: string): Activation | undefined {
    return this.byKind.get(kind)?.get(identity);
  }

  get size(): number {
    let live = 0;
    for (const activations of this.byKind.values()) live += activations.size;
    return live;
  }

  *values(): IterableIterator<Activation> {
    for (const activations of this.byKind.values()) yield* activations.values();
  }

  /**
   * Create (or return the existing) local activation of `kind/identity` and give its Pid.
   * Only the holder of the identity's claim may call this.
   */
  /** The member is leaving: no new activations from now on. */
  leave(): void {
    this.leaving = true;
  }

  activate(kind: string, identity: string, epoch: number, activationId?: string): Pid {
    const clusterKind = this.deps.kinds.get(kind);
    let activations = this.byKind.get(kind);
    let activation = activations?.get(identity);
    if (activation === undefined) {
      // NOTE: a leaving member activates nothing new: its placements already go elsewhere, so
      // only a grain with nowhere else to go gets here (the last member hosting its kind).
      if (this.leaving) throw new ClusterShuttingDownError('is leaving the cluster');
      if (clusterKind === undefined) throw new UnknownKindError(kind);
      if (activations === undefined) this.byKind.set(kind, (activations = new Map()));
      // NOTE: the kind's own prefix string, so a key is that and the identity, not a fresh copy of both.
      activation = new Activation(clusterKind, identity, epoch, this, activationId, this.deps.member.incarnation, clusterKind.keyPrefix + identity);
      activations.set(identity, activation);
      this.counters.activated++;
      activation.start();
    }
    return activation.toPid();
  }

  /**
   * What the gossiped heartbeat says of this member's load. Counts per kind are kept as
   * activations come and go; the mailbox depth walks at most MAX_DEPTH_WALK activations per
   * heartbeat (the rest estimated from them), so a member with a million activations does
   * not stall once a second for it.
   */
  load(): { activations: number; activationsByKind: Record<string, number>; mailboxDepth: number; calls: number } {
    let mailboxDepth = 0;
    let walked = 0;
    const activationsByKind: Record<string, number> = Object.fromEntries(
      [...this.byKind].filter(([, activations]) => activations.size > 0).map(([kind, activations]) => [kind, activations.size]),
    );
    for (const activation of this.values()) {
      if (walked++ === MAX_DEPTH_WALK) break;
      mailboxDepth += activation.mailbox.depth;
    }
    const activations = this.size;
    if (walked > MAX_DEPTH_WALK) mailboxDepth = Math.round((mailboxDepth * activations) / MAX_DEPTH_WALK);
    return { activations, activationsByKind, mailboxDepth, calls: this.delivered };
  }

  /** A new activation id, unique in the cluster. */
  newActivationId(): string {
    return this.activationIdOf(this.deps.member.incarnation, this.nextActivationNumber());
  }

  nextActivationNumber(): number {
    return ++this.sequence;
  }

  activationIdOf(incarnation: string, number: number): string {
    // NOTE: the incarnation keeps ids unique across restarts of a member with a stable id.
    // One prefix string per incarnation, so an id is that string and a short suffix, not a
    // tree of fresh pieces.
    if (this.idPrefixOf !== incarnation) {
      this.idPrefixOf = incarnation;
      this.idPrefix = `${this.memberId}:${incarnation.slice(0, 8)}:`;
    }
    return this.idPrefix + number.toString(36);
  }

  mailboxSettings(kind: ClusterKind): MailboxSettings {
    let settings = this.settingsByKind.get(kind);
    if (settings === undefined) {
      settings = { sweeper: this.sweeper, maxQueued: kind.maxQueueLength, hangAfterMs: this.hangTimeoutMs, asyncContext: this.asyncContext };
      this.settingsByKind.set(kind, settings);
    }
    return settings;
  }

  /**
   * Whatever this member held is no longer its own: take a new incarnation and fence every
   * activation (no hooks; calls that never ran go elsewhere). Returns how many were fenced.
   */
  fenceAll(): number {
    const all = [...this.values()];
    this.deps.member.renewIncarnation();
    for (const activation of all) activation.fence('', false);
    // NOTE: claims of the old incarnation are never this one's: nothing of it needs retiring.
    this.retired.clear();
    return all.length;
  }

  /** True when `activationId` ended fenced in this incarnation (its claim not released). */
  isRetired(activationId: string): boolean {
    return this.retired.has(activationId);
  }

  redirect(call: Call): void {
    this.deps.redirect(call);
  }

  onStopped(activation: Activation, how: StopKind): void {
    const activations = this.byKind.get(activation.kind.name);
    if (activations?.get(activation.identity) === activation) activations.delete(activation.identity);
    this.counters.deactivated++;
    if (how === 'poisoned') this.counters.poisoned++;
    if (how === 'fenced') {
      this.counters.fenced++;
      this.metrics.fenced(activation.kind.name);
      if (activation.incarnation === this.deps.member.incarnation) {
        if (this.retired.size >= MAX_RETIRED) this.retired.delete(this.retired.values().next().value!);
        this.retired.add(activation.id);
      }
    }
    this.deps.ended(activation, how);
  }
}
