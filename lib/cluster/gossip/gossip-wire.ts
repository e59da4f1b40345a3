import protobuf from 'protobufjs';
import { inspectMessage } from '../../remote/inbound-limits.js';
import { protoFile } from '../../remote/wire.js';
import { contractDrift, fieldsOf, type WireContract } from '../../remote/wire-contract.js';

/**
 * Hard bounds on what a peer's gossip may hold, whatever this member's own options: a message
 * beyond them is dropped whole, unread (it came from a member with other limits, or from no
 * member at all).
 */
export const GOSSIP_WIRE_LIMITS = {
  /** Bytes of one message. */
  maxMessageBytes: 1024 * 1024,
  /** Origins (member incarnations) in one message, in `states` and in `seen` each. */
  maxOrigins: 4_096,
  /** Entries of one origin in one message. */
  maxEntriesPerOrigin: 1_024,
  /** UTF-16 units of a key, a member id or an incarnation. */
  maxNameLength: 1_024,
  /** Bytes of one value. */
  maxValueBytes: 64 * 1024,
  /** Decoded values (every tag) in one message. */
  maxValues: 100_000,
} as const;

/** One entry of an origin's state. `value` is JSON (UTF-8); undefined when deleted. */
export interface GossipEntry {
  readonly key: string;
  readonly sequence: number;
  readonly value: Uint8Array | undefined;
}

/** Entries of one member incarnation: every change after `after`. */
export interface GossipMemberState {
  readonly memberId: string;
  readonly incarnation: string;
  readonly after: number;
  readonly entries: readonly GossipEntry[];
}

/** The highest sequence number the sender holds of one member incarnation. */
export interface GossipWatermark {
  readonly memberId: string;
  readonly incarnation: string;
  readonly sequence: number;
}

export interface GossipMessage {
  readonly states: readonly GossipMemberState[];
  readonly seen: readonly GossipWatermark[];
  readonly reply: boolean;
}

/** Gossip bytes that do not hold what gossip.proto and its limits promise. */
export class GossipWireError extends Error {
  readonly code = 'GOSSIP_MALFORMED';
}

interface RawEntry {
  key: string;
  sequence: unknown;
  value: unknown;
  deleted: boolean;
}
interface RawState {
  memberId: string;
  incarnation: string;
  after: unknown;
  entries: RawEntry[];
}
interface RawWatermark {
  memberId: string;
  incarnation: string;
  sequence: unknown;
}
interface RawMessage {
  states: RawState[];
  seen: RawWatermark[];
  reply: boolean;
}

/** What the types above assume of gossip.proto, checked when this module loads (as wire.ts does for remote.proto). */
export const GOSSIP_CONTRACT: WireContract = {
  protoPackage: 'nestjs_grains.gossip.v1',
  protoFile: 'gossip.proto',
  messages: {
    GossipMessage: fieldsOf<RawMessage>({ states: true, seen: true, reply: true }),
    MemberState: fieldsOf<RawState>({ memberId: true, incarnation: true, after: true, entries: true }),
    Entry: fieldsOf<RawEntry>({ key: true, sequence: true, value: true, deleted: true }),
    Watermark: fieldsOf<RawWatermark>({ memberId: true, incarnation: true, sequence: true }),
  },
  enums: {},
};

const root = protobuf.loadSync(protoFile('gossip.proto'));
const drift = contractDrift(root, GOSSIP_CONTRACT);
if (drift.length > 0) throw new Error(`nestjs-grains: lib/cluster/gossip/gossip-wire.ts and proto/gossip.proto disagree:\n- ${drift.join('\n- ')}`);
const MessageType = root.lookupType('nestjs_grains.gossip.v1.GossipMessage');
/** Which fields of gossip.proto hold messages, for the shape check before decoding. */
const NESTED = { GossipMessage: { 1: 'MemberState', 2: 'Watermark' }, MemberState: { 4: 'Entry' } } as const;
const NO_BYTES = new Uint8Array(0);

export function encodeGossip(message: GossipMessage): Uint8Array {
  return MessageType.encode({
    states: message.states.map((state) => ({
      memberId: state.memberId,
      incarnation: state.incarnation,
      after: state.after,
      entries: state.entries.map((entry) => ({
        key: entry.key,
        sequence: entry.sequence,
        value: entry.value ?? NO_BYTES,
        deleted: entry.value === undefined,
      })),
    })),
    seen: message.seen,
    reply: message.reply,
  } as unknown as protobuf.Message).finish();
}

/**
 * Decode and validate a peer's gossip. Untrusted bytes: the shape is checked before
 * protobufjs builds anything, then every field; anything off throws GossipWireError.
 */
export function decodeGossip(bytes: Uint8Array): GossipMessage {
  const limits = GOSSIP_WIRE_LIMITS;
  if (bytes.byteLength > limits.maxMessageBytes) throw new GossipWireError(`${bytes.byteLength} bytes, more than ${limits.maxMessageBytes}`);
  const problem = inspectMessage(bytes, NESTED, 'GossipMessage', limits.maxValues, {
    GossipMessage: limits.maxOrigins * 2,
    MemberState: limits.maxEntriesPerOrigin + 3,
  });
  if (problem !== undefined) throw new GossipWireError(problem);
  let raw: RawMessage;
  try {
    raw = MessageType.decode(bytes) as unknown as RawMessage;
  } catch (error) {
    throw new GossipWireError(`undecodable gossip: ${(error as Error).message}`);
  }
  if (raw.states.length > limits.maxOrigins || raw.seen.length > limits.maxOrigins) throw new GossipWireError(`more than ${limits.maxOrigins} members`);
  const states = raw.states.map((state): GossipMemberState => {
    name(state.memberId, 'member id');
    name(state.incarnation, 'incarnation');
    if (state.entries.length > limits.maxEntriesPerOrigin) throw new GossipWireError(`more than ${limits.maxEntriesPerOrigin} entries of one member`);
    return {
      memberId: state.memberId,
      incarnation: state.incarnation,
      after: sequenceOf(state.after, true),
      entries: state.entries.map((entry): GossipEntry => {
        if (entry.key.length === 0 || entry.key.length > limits.maxNameLength) throw new GossipWireError('a key that is empty or too long');
        const value = entry.value instanceof Uint8Array ? entry.value : NO_BYTES;
        if (value.byteLength > limits.maxValueBytes) throw new GossipWireError(`a value of more than ${limits.maxValueBytes} bytes`);
        return { key: entry.key, sequence: sequenceOf(entry.sequence, false), value: entry.deleted ? undefined : value };
      }),
    };
  });
  const seen = raw.seen.map((mark): GossipWatermark => {
    name(mark.memberId, 'member id');
    name(mark.incarnation, 'incarnation');
    return { memberId: mark.memberId, incarnation: mark.incarnation, sequence: sequenceOf(mark.sequence, true) };
  });
  return { states, seen, reply: raw.reply === true };
}

function name(value: string, what: string): void {
  if (value.length === 0 || value.length > GOSSIP_WIRE_LIMITS.maxNameLength) throw new GossipWireError(`a ${what} that is empty or too long`);
}

/** A uint64 as protobufjs reads it (a number, or a Long with the `long` package), as a safe integer. */
function sequenceOf(value: unknown, zeroAllowed: boolean): number {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'object' && value !== null && typeof (value as { low?: unknown }).low === 'number') {
    const long = value as { low: number; high: number };
    n = (long.high >>> 0) * 2 ** 32 + (long.low >>> 0);
  } else throw new GossipWireError('a sequence number that is not a number');
  if (!Number.isSafeInteger(n) || n < (zeroAllowed ? 0 : 1)) throw new GossipWireError(`sequence number ${n} out of range`);
  return n;
}
