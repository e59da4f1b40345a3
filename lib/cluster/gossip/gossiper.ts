import { createHash } from 'node:crypto';
import { now } from '../../actor/clock.js';
import { GossipError } from '../errors.js';
import type { LocalMember } from '../local-member.js';
import type { ClusterLogger } from '../logger.js';
import type { MemberList } from '../member-list.js';
import type { Member } from '../providers/cluster-provider.js';
import type { GossipSettings } from './gossip-options.js';
import { type GossipChange, GossipState, markMap } from './gossip-state.js';
import { decodeGossip, encodeGossip, GOSSIP_WIRE_LIMITS, type GossipMessage, GossipWireError } from './gossip-wire.js';

/** A value that can be gossiped: anything JSON can hold. */
export type GossipValue = string | number | boolean | null | readonly GossipValue[] | { readonly [key: string]: GossipValue };

/** What a member publishes about its load, every heartbeat. */
export interface MemberLoad {
  /** Activations alive on the member. */
  readonly activations: number;
  /** The same, per kind. */
  readonly activationsByKind: Readonly<Record<string, number>>;
  /** Calls waiting in its activations' mailboxes. */
  readonly mailboxDepth: number;
  /** Calls delivered to its activations per second, over the last heartbeat interval. */
  readonly callsPerSecond: number;
}

/** A member as gossip sees it. */
export interface GossipMemberStatus {
  readonly id: string;
  readonly incarnation: string;
  readonly address: string;
  /**
   * `alive`: heard from (or not yet expected to be); `suspected`: its heartbeat stopped or its
   * connection dropped, so no new grains go there until it is heard again; `leaving`: it is
   * shutting down (it serves what it hosts until drained).
   */
  readonly status: 'alive' | 'suspected' | 'leaving';
  /** Milliseconds since its heartbeat last advanced here; undefined before the first (or for a member that does not gossip). */
  readonly heartbeatAgeMs: number | undefined;
  /** Its last heartbeat's load, if one was heard. */
  readonly load: MemberLoad | undefined;
}

/** Whether every member sees the same member set (`cluster.gossip.topologyConsensus()`). */
export interface TopologyConsensus {
  /** True when every member this one lists has gossiped the same topology hash as this one's. */
  readonly consensus: boolean;
  /** This member's topology hash: of the ids and incarnations of the members it lists (client-only members excluded). */
  readonly hash: string;
  /** Each listed member's hash, as last heard (undefined: not heard yet). */
  readonly members: readonly { readonly id: string; readonly hash: string | undefined }[];
}

/** Listens to a gossip key: `value` undefined when the member deleted it, left, or took a new incarnation. */
export type GossipListener<T extends GossipValue = GossipValue> = (memberId: string, value: T | undefined) => void;

/**
 * Shared member state over gossip, as a user sees it (`cluster.gossip`): set this member's
 * own keys, read and watch every member's, see who is alive, suspected or leaving, and
 * whether members agree on the membership.
 */
export interface ClusterGossip {
  /**
   * Set a key of this member's state; it reaches every member within a few gossip rounds.
   * Throws GossipError for a reserved key (`grains:` prefix), a value JSON cannot hold or
   * over `gossip.maxValueBytes`, or a key beyond `gossip.maxKeys`.
   */
  set(key: string, value: GossipValue): void;
  /** Delete a key of this member's state (everywhere, in a few rounds). */
  delete(key: string): void;
  /** Member `memberId`'s value of `key` (this member's included), as last heard. */
  get<T extends GossipValue = GossipValue>(memberId: string, key: string): T | undefined;
  /** Every member's value of `key`, by member id (members that do not hold it are left out). */
  values<T extends GossipValue = GossipValue>(key: string): Map<string, T>;
  /** Be told whenever any member's `key` changes here; returns the function that stops it. */
  watch<T extends GossipValue = GossipValue>(key: string, listener: GossipListener<T>): () => void;
  /** Every listed member (this one first) with its gossip status and heartbeat age. */
  members(): GossipMemberStatus[];
  /** Whether every member sees the same member set. */
  topologyConsensus(): TopologyConsensus;
}

/** How gossip reaches peers: over this member's own connections to them (the remote). */
export interface GossipTransport {
  /** Push `bytes` to the member at `address`; false when it cannot go now (a connection is opened for next time). */
  push(address: string, bytes: Uint8Array): boolean;
}

export interface GossiperDeps {
  readonly member: LocalMember;
  readonly members: MemberList;
  readonly settings: GossipSettings;
  readonly logger: ClusterLogger;
  /** This member's load now. */
  load(): Omit<MemberLoad, 'callsPerSecond'> & { readonly calls: number };
  /** A member became suspected, or was heard again. */
  suspicionChanged(member: Member, suspected: boolean): void;
}

/** Keys the runtime sets; user keys may not start with this. */
export const RESERVED_PREFIX = 'grains:';
export const HEARTBEAT_KEY = 'grains:heartbeat';
export const TOPOLOGY_KEY = 'grains:topology';
export const LEAVING_KEY = 'grains:leaving';
/** Bytes of entries per push (beside the `seen` list); what does not fit goes next round. */
const PUSH_BUDGET = 256 * 1024;
/** Unanswered pushes to a peer before it is pushed to only every UNANSWERED_BACKOFF-th time it is picked. */
const UNANSWERED_BEFORE_BACKOFF = 3;
const UNANSWERED_BACKOFF = 16;
/** Malformed gossip lines logged per minute, at most. */
const MALFORMED_LOGS_PER_MINUTE = 5;

/** Why a member is suspected. */
interface Suspicion {
  /** Its connection dropped at this time (monotonic ms); cleared only by a new connection to that incarnation. */
  connectionLostAt?: number;
  /** Currently suspected (as last reported). */
  suspected: boolean;
  incarnation: string;
}

/**
 * The gossip engine: every `interval` it publishes this member's heartbeat when due, checks
 * suspicion, and pushes to `fanout` random peers what each has not seen (by the watermarks
 * the peer last reported); a peer answers a push with what the pusher lacks. Members that
 * left are dropped; only members the provider lists (by id and incarnation) are kept, so
 * gossip never adds a member.
 */
export class Gossiper implements ClusterGossip {
  private readonly state: GossipState;
  /** What each peer (by address) reported it holds, in its last reply. */
  private readonly peerSeen = new Map<string, Map<string, number>>();
  /** When each member's heartbeat last advanced here (monotonic ms), by id. */
  private readonly heard = new Map<string, { incarnation: string; at: number; load: MemberLoad }>();
  private readonly suspicions = new Map<string, Suspicion>();
  private readonly listeners = new Map<string, Set<GossipListener>>();
  private timer: NodeJS.Timeout | undefined;
  private transport: GossipTransport | undefined;
  private lastHeartbeatAt = -Infinity;
  private lastCalls = 0;
  private ownLoad: MemberLoad | undefined;
  private topologyHash = '';
  private malformedLogged = 0;
  private malformedWindow = 0;
  private stopped = false;
  /** Pushes each peer (by address) has not answered in a row: a member that does not gossip never does. */
  private readonly unanswered = new Map<string, number>();
  private readonly settings: GossipSettings;

  constructor(private readonly deps: GossiperDeps) {
    this.settings = deps.settings;
    this.state = new GossipState(deps.member.id, deps.member.incarnation);
  }

  /** Start the rounds (over `transport`, when there is a remote). */
  start(transport: GossipTransport | undefined): void {
    // NOTE: a member shut down while it was starting never starts gossiping.
    if (this.stopped) return;
    this.transport = transport;
    this.refreshTopology();
    this.heartbeat();
    if (!this.settings.enabled || this.timer !== undefined) return;
    this.timer = setInterval(() => this.round(), this.settings.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** This member is leaving: say so at once, to a round of peers. */
  leave(): void {
    this.publish(LEAVING_KEY, true);
    if (this.settings.enabled) this.push();
  }

  /** This member took a new incarnation (it was fenced and rejoined). */
  renewIncarnation(): void {
    this.state.renewOwn(this.deps.member.incarnation);
    this.peerSeen.clear();
    this.refreshTopology();
  }

  /** The membership changed: drop who left (or changed incarnation), republish the topology hash. */
  membershipChanged(): void {
    const members = this.deps.members;
    for (const id of [...this.state.heldMembers()]) {
      const listed = members.get(id);
      if (listed === undefined || listed.incarnation !== this.state.heldIncarnation(id)) this.forget(id);
    }
    for (const [id, suspicion] of this.suspicions) {
      const listed = members.get(id);
      if (listed === undefined || listed.incarnation !== suspicion.incarnation) this.suspicions.delete(id);
    }
    for (const [id, heard] of this.heard) if (members.get(id)?.incarnation !== heard.incarnation) this.heard.delete(id);
    // NOTE: what a peer said it holds may be stale now (it restarted, or forgot a member that
    // left for a moment): the next push to each says everything, and its reply corrects it.
    this.peerSeen.clear();
    const addresses = new Set(members.all().map((m) => m.address));
    for (const address of this.unanswered.keys()) if (!addresses.has(address)) this.unanswered.delete(address);
    this.refreshTopology();
    this.checkSuspicion();
  }

  /**
   * A connection this member dialled to `address` came up (`incarnation`: who answered) or
   * dropped. Only a connection to the listed incarnation clears a suspicion it raised: a
   * heartbeat relayed by others may be the last one a dead member sent.
   */
  connectionChanged(address: string, up: boolean, incarnation?: string): void {
    if (!this.settings.enabled) return;
    const member = this.memberAt(address);
    if (member === undefined) return;
    const suspicion = this.suspicionOf(member);
    if (up) {
      if (incarnation !== undefined && incarnation !== member.incarnation) return;
      delete suspicion.connectionLostAt;
    } else suspicion.connectionLostAt ??= now();
    this.checkSuspicion();
  }

  /**
   * A peer's push, on its stream to this member: take it in, and answer with what it lacks
   * (`reply` undefined while the stream takes no more: nothing is built). False when the bytes
   * are not gossip (the stream counts it as malformed).
   */
  receivePush(bytes: Uint8Array, reply: ((bytes: Uint8Array) => void) | undefined): boolean {
    const message = this.decode(bytes);
    if (message === undefined) return false;
    if (message.reply) return true;
    this.merge(message);
    if (reply !== undefined) reply(encodeGossip({ states: this.state.delta(message.seen, PUSH_BUDGET), seen: this.state.watermarks(), reply: true }));
    return true;
  }

  /** A peer's answer to this member's push, on this member's connection to `address`. */
  receiveReply(address: string, bytes: Uint8Array): void {
    const message = this.decode(bytes);
    if (message === undefined || !message.reply) return;
    this.merge(message);
    this.unanswered.delete(address);
    if (this.memberAt(address) !== undefined) this.peerSeen.set(address, markMap(message.seen));
  }

  /** The load member `memberId` last published (this one's own, as of its last heartbeat). */
  load(memberId: string): MemberLoad | undefined {
    if (memberId === this.deps.member.id) return this.ownLoad;
    return this.heard.get(memberId)?.load;
  }

  /** Whether member `memberId` is suspected now. */
  isSuspected(memberId: string): boolean {
    return this.suspicions.get(memberId)?.suspected === true;
  }

  // ClusterGossip ---------------------------------------------------------------------------

  set(key: string, value: GossipValue): void {
    this.checkUserKey(key);
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch (error) {
      throw new GossipError(`gossip value of "${key}" cannot be sent: ${(error as Error).message}`);
    }
    if (json === undefined) throw new GossipError(`gossip value of "${key}" cannot be sent: JSON has no form for it.`);
    const bytes = Buffer.from(json, 'utf8');
    if (bytes.byteLength > this.settings.maxValueBytes) {
      throw new GossipError(
        `gossip value of "${key}" is ${bytes.byteLength} bytes as JSON; the limit is ${this.settings.maxValueBytes} (gossip.maxValueBytes).`,
      );
    }
    const keys = this.state.ownKeyNames();
    if (!keys.includes(key) && keys.filter((k) => !k.startsWith(RESERVED_PREFIX)).length >= this.settings.maxKeys) {
      throw new GossipError(`this member already set ${this.settings.maxKeys} gossip keys (gossip.maxKeys); "${key}" is one too many.`);
    }
    this.change(this.state.setOwn(key, bytes));
  }

  delete(key: string): void {
    this.checkUserKey(key);
    if (this.state.ownValue(key) === undefined) return;
    this.change(this.state.setOwn(key, undefined));
  }

  get<T extends GossipValue = GossipValue>(memberId: string, key: string): T | undefined {
    const bytes = this.state.value(memberId, key);
    return bytes === undefined ? undefined : (parse(bytes) as T | undefined);
  }

  values<T extends GossipValue = GossipValue>(key: string): Map<string, T> {
    const values = new Map<string, T>();
    for (const [memberId, bytes] of this.state.valuesOf(key)) {
      const value = parse(bytes);
      if (value !== undefined) values.set(memberId, value as T);
    }
    return values;
  }

  watch<T extends GossipValue = GossipValue>(key: string, listener: GossipListener<T>): () => void {
    let set = this.listeners.get(key);
    if (set === undefined) this.listeners.set(key, (set = new Set()));
    set.add(listener as GossipListener);
    return () => {
      set.delete(listener as GossipListener);
      if (set.size === 0 && this.listeners.get(key) === set) this.listeners.delete(key);
    };
  }

  members(): GossipMemberStatus[] {
    const at = now();
    const members = this.deps.members;
    return members.all().map((member) => {
      const self = member.id === this.deps.member.id;
      const heard = self ? undefined : this.heard.get(member.id);
      const leaving = self ? members.isLeaving : members.isMemberLeaving(member.id);
      return {
        id: member.id,
        incarnation: member.incarnation,
        address: member.address,
        status: leaving ? 'leaving' : !self && this.isSuspected(member.id) ? 'suspected' : 'alive',
        heartbeatAgeMs: self ? (this.lastHeartbeatAt === -Infinity ? undefined : Math.round(at - this.lastHeartbeatAt)) : heard && Math.round(at - heard.at),
        load: self ? this.ownLoad : heard?.load,
      };
    });
  }

  topologyConsensus(): TopologyConsensus {
    const hash = this.topologyHash;
    const members: { id: string; hash: string | undefined }[] = [];
    let consensus = true;
    for (const member of this.serving()) {
      const theirs = member.id === this.deps.member.id ? hash : this.listedValue(member, TOPOLOGY_KEY);
      const value = typeof theirs === 'string' ? theirs : undefined;
      if (value !== hash) consensus = false;
      members.push({ id: member.id, hash: value });
    }
    return { consensus, hash, members };
  }

  // The rounds --------------------------------------------------------------------------------

  private round(): void {
    if (now() - this.lastHeartbeatAt >= this.settings.heartbeatIntervalMs) this.heartbeat();
    this.checkSuspicion();
    this.push();
  }

  private push(): void {
    const transport = this.transport;
    if (transport === undefined) return;
    const self = this.deps.member;
    const members = this.deps.members;
    // NOTE: a member leaving gets nothing new (it still pushes, and hears the replies).
    const peers = members.all().filter((m) => m.id !== self.id && m.address !== '' && m.address !== self.address && !members.isMemberLeaving(m.id));
    const targets = pick(peers, this.settings.fanout);
    // NOTE: a member suspected because its connection dropped is tried every round: a new
    // connection (to the same incarnation) is what clears it.
    for (const peer of peers) if (this.suspicions.get(peer.id)?.connectionLostAt !== undefined && !targets.includes(peer)) targets.push(peer);
    const seen = this.state.watermarks();
    for (const peer of targets) {
      // NOTE: a peer that answers none of its pushes (it does not gossip: gossip off) is sent
      // what it lacks only now and then, not its whole state every round.
      const unanswered = this.unanswered.get(peer.address) ?? 0;
      if (unanswered >= UNANSWERED_BEFORE_BACKOFF && unanswered % UNANSWERED_BACKOFF !== 0) {
        this.unanswered.set(peer.address, unanswered + 1);
        continue;
      }
      const states = this.state.delta(this.peerSeen.get(peer.address) ?? NOTHING_SEEN, PUSH_BUDGET, peer.id);
      if (transport.push(peer.address, encodeGossip({ states, seen, reply: false }))) this.unanswered.set(peer.address, unanswered + 1);
    }
  }

  private heartbeat(): void {
    const at = now();
    const load = this.deps.load();
    const elapsed = (at - this.lastHeartbeatAt) / 1_000;
    const callsPerSecond = Number.isFinite(elapsed) && elapsed > 0 ? Math.round((load.calls - this.lastCalls) / elapsed) : 0;
    this.lastCalls = load.calls;
    this.lastHeartbeatAt = at;
    this.ownLoad = {
      activations: load.activations,
      activationsByKind: load.activationsByKind,
      mailboxDepth: load.mailboxDepth,
      callsPerSecond,
    };
    this.publish(HEARTBEAT_KEY, { ...this.ownLoad });
  }

  private checkSuspicion(): void {
    const at = now();
    const after = this.settings.suspectAfterMs;
    for (const member of this.deps.members.all()) {
      if (member.id === this.deps.member.id) continue;
      const suspicion = this.suspicions.get(member.id);
      const heard = this.heard.get(member.id);
      const silent = this.settings.enabled && heard !== undefined && heard.incarnation === member.incarnation && at - heard.at > after;
      const disconnected = suspicion?.connectionLostAt !== undefined;
      // NOTE: a member that said it is leaving takes no new grains already, and goes silent
      // when it stops: that is not a failure to report.
      const suspected = (silent || disconnected) && !this.deps.members.isMemberLeaving(member.id);
      if (suspected === (suspicion?.suspected ?? false)) continue;
      const record = this.suspicionOf(member);
      record.suspected = suspected;
      if (suspected) {
        const why = silent ? `no heartbeat for ${Math.round((at - heard!.at) / 100) / 10} s` : 'its connection dropped';
        this.deps.logger.warn(`Gossip: member ${member.id} (${member.address}) is suspected (${why}): no new grains go there until it is heard again.`);
      } else {
        this.deps.logger.log(`Gossip: member ${member.id} (${member.address}) is heard again; it takes new grains.`);
      }
      this.deps.suspicionChanged(member, suspected);
    }
  }

  // Internals --------------------------------------------------------------------------------

  private merge(message: GossipMessage): void {
    const members = this.deps.members;
    const changes = this.state.merge(message, (id, incarnation) => members.get(id)?.incarnation === incarnation);
    for (const change of changes) this.change(change);
    if (changes.length > 0) this.checkSuspicion();
  }

  private change(change: GossipChange): void {
    const self = change.memberId === this.deps.member.id;
    if (!self && change.key === HEARTBEAT_KEY && change.value !== undefined) {
      const load = loadOf(parse(change.value));
      if (load !== undefined) this.heard.set(change.memberId, { incarnation: change.incarnation, at: now(), load });
    }
    if (!self && change.key === LEAVING_KEY && change.value !== undefined) {
      this.deps.members.markLeaving(change.memberId, change.incarnation);
    }
    const listeners = this.listeners.get(change.key);
    if (listeners === undefined) return;
    const value = change.value === undefined ? undefined : parse(change.value);
    for (const listener of [...listeners]) {
      try {
        listener(change.memberId, value);
      } catch (error) {
        this.deps.logger.error(`Gossip: a listener of "${change.key}" threw: ${(error as Error).message}`, (error as Error).stack);
      }
    }
  }

  private publish(key: string, value: GossipValue): void {
    this.change(this.state.setOwn(key, Buffer.from(JSON.stringify(value), 'utf8')));
  }

  private refreshTopology(): void {
    const ids = this.serving()
      .map((m) => `${m.id}@${m.incarnation}`)
      .sort();
    const hash = createHash('sha256').update(ids.join('\n')).digest('hex').slice(0, 16);
    if (hash === this.topologyHash && this.state.ownValue(TOPOLOGY_KEY) !== undefined) return;
    this.topologyHash = hash;
    this.publish(TOPOLOGY_KEY, hash);
  }

  /** Listed members that serve (client-only members are in no one else's list). */
  private serving(): Member[] {
    return this.deps.members.all().filter((m) => m.address !== '');
  }

  private listedValue(member: Member, key: string): GossipValue | undefined {
    if (this.state.heldIncarnation(member.id) !== member.incarnation) return undefined;
    const bytes = this.state.value(member.id, key);
    return bytes === undefined ? undefined : parse(bytes);
  }

  private forget(memberId: string): void {
    const incarnation = this.state.heldIncarnation(memberId) ?? '';
    const keys = [...this.listeners.keys()].filter((key) => this.state.value(memberId, key) !== undefined);
    this.state.drop(memberId);
    for (const key of keys) this.change({ memberId, incarnation, key, value: undefined });
  }

  private memberAt(address: string): Member | undefined {
    return this.deps.members.all().find((m) => m.address === address && m.id !== this.deps.member.id);
  }

  private suspicionOf(member: Member): Suspicion {
    let suspicion = this.suspicions.get(member.id);
    if (suspicion === undefined || suspicion.incarnation !== member.incarnation) {
      // NOTE: a new incarnation starts unsuspected (the member list forgot the old one's suspicion too).
      suspicion = { suspected: false, incarnation: member.incarnation };
      this.suspicions.set(member.id, suspicion);
    }
    return suspicion;
  }

  private decode(bytes: Uint8Array): GossipMessage | undefined {
    try {
      return decodeGossip(bytes);
    } catch (error) {
      if (!(error instanceof GossipWireError)) throw error;
      const at = now();
      if (at - this.malformedWindow > 60_000) {
        this.malformedWindow = at;
        this.malformedLogged = 0;
      }
      if (this.malformedLogged++ < MALFORMED_LOGS_PER_MINUTE) this.deps.logger.warn(`Gossip: dropped a malformed message from a peer: ${error.message}`);
      return undefined;
    }
  }

  private checkUserKey(key: string): void {
    if (typeof key !== 'string' || key.length === 0 || key.length > GOSSIP_WIRE_LIMITS.maxNameLength) {
      throw new GossipError(`a gossip key is a non-empty string of at most ${GOSSIP_WIRE_LIMITS.maxNameLength} characters.`);
    }
    if (key.startsWith(RESERVED_PREFIX)) throw new GossipError(`gossip keys starting with "${RESERVED_PREFIX}" are the runtime's own; "${key}" cannot be set.`);
  }
}

const NOTHING_SEEN: ReadonlyMap<string, number> = new Map();

/** Up to `n` of `items`, at random. */
function pick<T>(items: T[], n: number): T[] {
  if (items.length <= n) return items;
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(Math.random() * (items.length - i));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items.slice(0, n);
}

function parse(bytes: Uint8Array): GossipValue | undefined {
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as GossipValue;
  } catch {
    return undefined;
  }
}

/** A heartbeat's load, if `value` is one (untrusted: checked field by field). */
function loadOf(value: GossipValue | undefined): MemberLoad | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const v = value as Record<string, GossipValue>;
  const count = (x: GossipValue | undefined) => (typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : undefined);
  const activations = count(v['activations']);
  const mailboxDepth = count(v['mailboxDepth']);
  const callsPerSecond = count(v['callsPerSecond']);
  const byKind = v['activationsByKind'];
  if (activations === undefined || mailboxDepth === undefined || callsPerSecond === undefined) return undefined;
  const activationsByKind: Record<string, number> = {};
  if (typeof byKind === 'object' && byKind !== null && !Array.isArray(byKind)) {
    for (const [kind, n] of Object.entries(byKind as Record<string, GossipValue>)) {
      const c = count(n);
      if (c !== undefined) activationsByKind[kind] = c;
    }
  }
  return { activations, activationsByKind, mailboxDepth, callsPerSecond };
}
