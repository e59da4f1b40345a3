import { GOSSIP_WIRE_LIMITS, type GossipEntry, type GossipMemberState, type GossipMessage, type GossipWatermark } from './gossip-wire.js';

/** One key of a member's state as held here; `value` undefined once deleted (kept so the deletion spreads). */
interface HeldEntry {
  sequence: number;
  value: Uint8Array | undefined;
}

/** What this member holds of one member incarnation's state. */
class OriginState {
  readonly entries = new Map<string, HeldEntry>();
  /** Every change of the origin up to this sequence number is held here. */
  watermark = 0;
  /** Bytes of keys and values held, against `MAX_ORIGIN_BYTES`. */
  bytes = 0;

  constructor(
    readonly memberId: string,
    readonly incarnation: string,
  ) {}

  /** Entries changed after `after`, in sequence order. */
  changedAfter(after: number): GossipEntry[] {
    const changed: GossipEntry[] = [];
    if (after >= this.watermark) return changed;
    for (const [key, entry] of this.entries) if (entry.sequence > after) changed.push({ key, sequence: entry.sequence, value: entry.value });
    return changed.sort((a, b) => a.sequence - b.sequence);
  }
}

/** A key of a member incarnation that changed here (set, replaced or deleted). */
export interface GossipChange {
  readonly memberId: string;
  readonly incarnation: string;
  readonly key: string;
  /** JSON bytes; undefined when deleted. */
  readonly value: Uint8Array | undefined;
}

/**
 * Bytes of entries held per origin. A member's own options are held below it
 * (gossip-options.ts); what a member with other limits sends beyond it is not kept.
 */
export const MAX_ORIGIN_BYTES = 4 * 1024 * 1024;
/** What an entry counts for in a message beside its key and value. */
const ENTRY_OVERHEAD = 16;

/**
 * The gossip state as this member holds it: its own entries (which only it changes, each
 * change numbered by its own sequence) and what it learned of every other member's. Pure
 * data: no timers, no network; the gossiper (gossiper.ts) drives it.
 *
 * What this member holds of an origin is always that origin's state as of one sequence
 * number (its watermark): deltas are sent in sequence order from what the receiver holds, so
 * a receiver never skips a change (a deletion included).
 */
export class GossipState {
  private own: OriginState;
  private readonly others = new Map<string, OriginState>();

  constructor(
    readonly memberId: string,
    incarnation: string,
  ) {
    this.own = new OriginState(memberId, incarnation);
  }

  get incarnation(): string {
    return this.own.incarnation;
  }

  /** Set (or, with undefined, delete) a key of this member's own state. Returns the change. */
  setOwn(key: string, value: Uint8Array | undefined): GossipChange {
    const own = this.own;
    const sequence = ++own.watermark;
    const previous = own.entries.get(key);
    own.bytes += (value?.byteLength ?? 0) - (previous?.value?.byteLength ?? 0) + (previous === undefined ? key.length : 0);
    own.entries.set(key, { sequence, value });
    return { memberId: this.memberId, incarnation: own.incarnation, key, value };
  }

  /** This member's own value of `key` (JSON bytes), if set. */
  ownValue(key: string): Uint8Array | undefined {
    return this.own.entries.get(key)?.value;
  }

  /** Keys of this member's own state, deleted ones included (they count toward its limit until set again). */
  ownKeyNames(): string[] {
    return [...this.own.entries.keys()];
  }

  /**
   * This member took a new incarnation: its state starts over under it, holding the same
   * values (numbered anew), so peers drop what they held of the old one.
   */
  renewOwn(incarnation: string): void {
    const old = this.own;
    this.own = new OriginState(this.memberId, incarnation);
    for (const [key, entry] of [...old.entries].sort((a, b) => a[1].sequence - b[1].sequence)) {
      if (entry.value !== undefined) this.setOwn(key, entry.value);
    }
  }

  /** The value of `key` of member `memberId` (this one included), if held. */
  value(memberId: string, key: string): Uint8Array | undefined {
    const origin = memberId === this.memberId ? this.own : this.others.get(memberId);
    return origin?.entries.get(key)?.value;
  }

  /** The incarnation of `memberId` whose state is held, if any. */
  heldIncarnation(memberId: string): string | undefined {
    return memberId === this.memberId ? this.own.incarnation : this.others.get(memberId)?.incarnation;
  }

  /** Every member holding `key` (this one included), with its value. */
  valuesOf(key: string): Map<string, Uint8Array> {
    const values = new Map<string, Uint8Array>();
    for (const origin of [this.own, ...this.others.values()]) {
      const value = origin.entries.get(key)?.value;
      if (value !== undefined) values.set(origin.memberId, value);
    }
    return values;
  }

  /** Forget what is held of `memberId` (it left, or another incarnation of it is listed now). */
  drop(memberId: string): void {
    this.others.delete(memberId);
  }

  /** The member ids whose state is held (this one excluded). */
  heldMembers(): IterableIterator<string> {
    return this.others.keys();
  }

  /**
   * Take in a peer's message. Only origins `listed` (a member id and incarnation the provider
   * lists) are kept; this member's own state is never taken from a peer. Returns what changed.
   */
  merge(message: GossipMessage, listed: (memberId: string, incarnation: string) => boolean): GossipChange[] {
    const changes: GossipChange[] = [];
    for (const state of message.states) {
      if (state.memberId === this.memberId) continue;
      let origin = this.others.get(state.memberId);
      if (origin === undefined || origin.incarnation !== state.incarnation) {
        if (!listed(state.memberId, state.incarnation)) continue;
        if (origin !== undefined) {
          // NOTE: a new incarnation: what the old one held is gone with it.
          for (const key of origin.entries.keys()) changes.push({ memberId: state.memberId, incarnation: state.incarnation, key, value: undefined });
        }
        origin = new OriginState(state.memberId, state.incarnation);
        this.others.set(state.memberId, origin);
      }
      // NOTE: the entries are every change after `after`. A receiver that holds less than
      // `after` of this origin (the sender thought it held more: it forgot the origin when the
      // provider dropped it for a moment, or it restarted) takes none of them: holding a later
      // change without the ones before it, it would pass it on as if it held them all, and a
      // member further on would never get the missing ones. It says what it holds in its
      // `seen`, and gets everything from there next time.
      if (state.after > origin.watermark) continue;
      let highest = 0;
      for (const entry of state.entries) {
        if (entry.sequence > highest) highest = entry.sequence;
        const held = origin.entries.get(entry.key);
        if (held !== undefined && held.sequence >= entry.sequence) continue;
        const grows = (entry.value?.byteLength ?? 0) - (held?.value?.byteLength ?? 0) + (held === undefined ? entry.key.length : 0);
        if (held === undefined && origin.entries.size >= GOSSIP_WIRE_LIMITS.maxEntriesPerOrigin) continue;
        if (grows > 0 && origin.bytes + grows > MAX_ORIGIN_BYTES) continue;
        origin.bytes += grows;
        origin.entries.set(entry.key, { sequence: entry.sequence, value: entry.value });
        if (held?.value !== undefined || entry.value !== undefined) {
          changes.push({ memberId: state.memberId, incarnation: state.incarnation, key: entry.key, value: entry.value });
        }
      }
      if (highest > origin.watermark) origin.watermark = highest;
    }
    return changes;
  }

  /** What this member holds: per origin (itself included), its watermark. */
  watermarks(): GossipWatermark[] {
    const marks: GossipWatermark[] = [{ memberId: this.memberId, incarnation: this.own.incarnation, sequence: this.own.watermark }];
    for (const origin of this.others.values()) marks.push({ memberId: origin.memberId, incarnation: origin.incarnation, sequence: origin.watermark });
    return marks;
  }

  /**
   * What a peer that holds `seen` lacks, within about `budget` bytes: this member's own
   * changes first, then the others'. An origin cut by the budget is sent as a prefix (in
   * sequence order), so the peer still holds a consistent state of it; the rest goes next time.
   * Nothing is sent of `peerId`'s own state (it holds it best).
   */
  delta(seen: readonly GossipWatermark[] | ReadonlyMap<string, number>, budget: number, peerId?: string): GossipMemberState[] {
    const marks = seen instanceof Map ? seen : markMap(seen as readonly GossipWatermark[]);
    const states: GossipMemberState[] = [];
    let bytes = 0;
    for (const origin of [this.own, ...shuffled([...this.others.values()])]) {
      if (origin.memberId === peerId) continue;
      const after = marks.get(originKey(origin.memberId, origin.incarnation)) ?? 0;
      const changed = origin.changedAfter(after);
      if (changed.length === 0) continue;
      let take = 0;
      while (take < changed.length) {
        const entry = changed[take]!;
        const size = entry.key.length + (entry.value?.byteLength ?? 0) + ENTRY_OVERHEAD;
        if (bytes + size > budget && (states.length > 0 || take > 0)) break;
        bytes += size;
        take++;
      }
      if (take > 0)
        states.push({ memberId: origin.memberId, incarnation: origin.incarnation, after, entries: take === changed.length ? changed : changed.slice(0, take) });
      if (take < changed.length) break;
    }
    return states;
  }
}

/** `memberId NUL incarnation`: how watermarks are looked up. */
export function originKey(memberId: string, incarnation: string): string {
  return `${memberId}\u0000${incarnation}`;
}

/** A peer's `seen` list as a lookup by origin. */
export function markMap(seen: readonly GossipWatermark[]): Map<string, number> {
  const marks = new Map<string, number>();
  for (const mark of seen) marks.set(originKey(mark.memberId, mark.incarnation), mark.sequence);
  return marks;
}

function shuffled<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

export type { GossipMessage };
