/**
 * Bounded inbound work: what a peer may make this member do per frame, per request and per
 * stream, so that no input stalls the event loop for long (a member that stalls for about
 * 750 ms loses a FAST_LEASE, so any long stall is a fencing event).
 *
 * Checked in this order: the shape of a frame's bytes before protobufjs decodes them
 * (`inspectFrame`), the frame's contents (wire.ts validates them), each request's strings,
 * chain and timeout (`requestProblem`), then the cluster's own admission
 * (remoting/remote-callee.ts: identity rule, lease, kind and method, arguments).
 */
import { DEFAULT_MAX_QUEUED_BYTES, MAX_ENVELOPES_PER_BATCH } from './batch-writer.js';
import type { WireRequest } from './wire.js';

/** Inbound limits a member may set (`RemoteOptions.inbound`); each has a default. */
export interface InboundLimitOptions {
  /**
   * Requests (and responses) in one frame. A frame with more is dropped whole, unread, and
   * counts as malformed. At least 1000 (what a member writes per frame). @default 10000
   */
  maxRequestsPerBatch?: number;
  /** Links of a request's call chain (grain calls in a row); a longer one is answered BAD_REQUEST. @default 64 */
  maxChainLength?: number;
  /**
   * The longest timeout a peer's request may carry, in ms; a longer one is answered
   * BAD_REQUEST (it never runs). Raise it on every member when calls may take longer. @default 600000 (10 min)
   */
  maxTimeoutMs?: number;
  /** Malformed frames a stream may send (undecodable, invalid, over a limit) before it is closed. @default 8 */
  maxMalformedFramesPerStream?: number;
  /**
   * Open streams on one connection. Every process shares one connection per address between
   * all its clients (grpc-js), so it counts every member a process runs. @default 16
   */
  maxStreamsPerConnection?: number;
  /** Open streams of one member id (a member needs one per peer; more while it reconnects). A handshake beyond it is refused. @default 4 */
  maxStreamsPerMember?: number;
}

/** The inbound limits in force: `InboundLimitOptions` with defaults, plus the cluster's identity rule and queue bound. */
export interface InboundLimits {
  readonly maxRequestsPerBatch: number;
  readonly maxChainLength: number;
  readonly maxTimeoutMs: number;
  readonly maxMalformedFramesPerStream: number;
  readonly maxStreamsPerConnection: number;
  readonly maxStreamsPerMember: number;
  /** The cluster's `maxIdentityBytes`: an identity of more UTF-16 units is refused before the identity rule runs. */
  readonly maxIdentityBytes: number;
  /** Bytes of responses queued per stream before more are refused (`RemoteOptions.maxQueuedBytesPerPeer`). */
  readonly maxQueuedBytes: number;
}

export const DEFAULT_MAX_REQUESTS_PER_BATCH = 10_000;
export const DEFAULT_MAX_CHAIN_LENGTH = 64;
export const DEFAULT_MAX_TIMEOUT_MS = 10 * 60_000;
export const DEFAULT_MAX_MALFORMED_FRAMES_PER_STREAM = 8;
export const DEFAULT_MAX_STREAMS_PER_CONNECTION = 16;
export const DEFAULT_MAX_STREAMS_PER_MEMBER = 4;
/** `RemoteOptions.maxQueuedBytesPerPeer` when not given. */
export const DEFAULT_MAX_QUEUED_BYTES_PER_PEER = DEFAULT_MAX_QUEUED_BYTES;
/**
 * Decoded values (messages, strings, fields: every tag) a frame may hold per request it may
 * hold: a member's own frames hold about 10 per request (batch-writer.ts keeps them under
 * `MAX_ENTRIES_PER_WRITE`), so this bounds what protobufjs builds from one frame.
 */
export const ENTRIES_PER_REQUEST = 16;
/** Beyond the identity's own limit, what the other strings of a request may hold (kind, method, chain entries, incarnation), in UTF-16 units. */
export const NAME_ALLOWANCE = 1_024;
/** What the request's timeout cannot exceed whatever the options say: the largest delay a Node timer takes. */
const MAX_TIMER_MS = 2_147_483_647;

/** The limits in force for `options`; throws a plain Error naming the option that is not valid. */
export function inboundLimits(options: InboundLimitOptions | undefined, maxIdentityBytes: number, maxQueuedBytes: number): InboundLimits {
  const pick = (name: keyof InboundLimitOptions, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const value = options?.[name] ?? fallback;
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new Error(`remote.inbound.${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
    }
    return value;
  };
  return {
    maxRequestsPerBatch: pick('maxRequestsPerBatch', DEFAULT_MAX_REQUESTS_PER_BATCH, MAX_ENVELOPES_PER_BATCH),
    maxChainLength: pick('maxChainLength', DEFAULT_MAX_CHAIN_LENGTH, 1),
    maxTimeoutMs: pick('maxTimeoutMs', DEFAULT_MAX_TIMEOUT_MS, 1, MAX_TIMER_MS),
    maxMalformedFramesPerStream: pick('maxMalformedFramesPerStream', DEFAULT_MAX_MALFORMED_FRAMES_PER_STREAM, 1),
    maxStreamsPerConnection: pick('maxStreamsPerConnection', DEFAULT_MAX_STREAMS_PER_CONNECTION, 1),
    maxStreamsPerMember: pick('maxStreamsPerMember', DEFAULT_MAX_STREAMS_PER_MEMBER, 1),
    maxIdentityBytes,
    maxQueuedBytes,
  };
}

// Frame shape -------------------------------------------------------------------------------

/** The messages of remote.proto that hold other messages: field number → the message it holds. */
const NESTED: Record<string, Record<number, string>> = {
  Frame: { 1: 'Handshake', 2: 'HandshakeAck', 3: 'Batch' },
  Handshake: { 2: 'MemberInfo' },
  HandshakeAck: { 3: 'MemberInfo' },
  Batch: { 2: 'Request', 3: 'Response' },
  Request: { 7: 'ChainLink' },
  Response: { 4: 'RemoteError' },
};
/** For the test that compares NESTED with remote.proto. */
export const NESTED_MESSAGES: Readonly<Record<string, Readonly<Record<number, string>>>> = NESTED;

class Malformed extends Error {}
class OverLimit extends Error {}

/**
 * What is wrong with a frame's bytes before anything decodes them, or undefined: more than
 * `maxRequestsPerBatch` requests and responses, more than `ENTRIES_PER_REQUEST` times that
 * many decoded values in all, or bytes that are not protobuf. Reads the bytes once, builds
 * nothing, and stops at the first limit passed; so a frame of four million empty requests
 * costs a few milliseconds here instead of a second of protobufjs.
 */
export function inspectFrame(bytes: Uint8Array, maxRequestsPerBatch: number): string | undefined {
  const problem = inspectMessage(bytes, NESTED, 'Frame', maxRequestsPerBatch * ENTRIES_PER_REQUEST, { Batch: maxRequestsPerBatch });
  if (problem?.startsWith('more than')) return `${problem} in one frame (remote.inbound.maxRequestsPerBatch ${maxRequestsPerBatch})`;
  return problem;
}

/**
 * The shape check of `inspectFrame` for any protobuf message: `nested` names, per message,
 * the fields that hold other messages (the rest are skipped unread). More than `maxValues`
 * decoded values (every tag), or more than `maxChildren[m]` messages directly inside one
 * `m`, or bytes that are not protobuf, is a problem (its text); undefined when none.
 */
export function inspectMessage(
  bytes: Uint8Array,
  nested: Readonly<Record<string, Readonly<Record<number, string>>>>,
  root: string,
  maxValues: number,
  maxChildren: Readonly<Record<string, number>> = {},
): string | undefined {
  const schema = schemaOf(nested);
  const rootId = schema.idOf(root);
  const limits = schema.names.map((name) => maxChildren[name] ?? Infinity);
  const walker = new ShapeWalker(bytes, schema, limits, maxValues);
  try {
    walker.walk(rootId, 0, bytes.length);
  } catch (error) {
    if (error instanceof OverLimit) return error.message;
    if (error instanceof Malformed) return `undecodable ${root === 'Frame' ? 'frame' : 'message'}: ${error.message}`;
    throw error;
  }
  return undefined;
}

/**
 * A `nested` table made into numbers once: messages by index, and per message an array from
 * field number to the index of the message it holds (-1: none). NOTE: the walk below runs for
 * every frame a member reads. Written plainly (string-keyed tables, closures, `2 ** shift` per
 * varint byte: a call to pow) it cost more than protobufjs's decoding of the same frame, ~280
 * ns against ~180 ns per request of a 256-request batch; as it is now, ~110 ns.
 * test/remote/frame-shape.spec.ts holds the plain version as the oracle.
 */
class Schema {
  readonly names: string[] = [];
  readonly children: number[][] = [];

  constructor(nested: Readonly<Record<string, Readonly<Record<number, string>>>>) {
    for (const [message, fields] of Object.entries(nested)) {
      const id = this.idOf(message);
      for (const [field, inner] of Object.entries(fields)) {
        const innerId = this.idOf(inner);
        const kids = this.children[id]!;
        const number = Number(field);
        // NOTE: a table of this module's own messages; an array per message, as long as its largest nested field.
        if (!Number.isInteger(number) || number < 1 || number > MAX_NESTED_FIELD) throw new Error(`inspectMessage: nested field number ${field} of ${message}`);
        while (kids.length <= number) kids.push(-1);
        kids[number] = innerId;
      }
    }
  }

  idOf(name: string): number {
    let id = this.names.indexOf(name);
    if (id < 0) {
      id = this.names.push(name) - 1;
      this.children.push([]);
    }
    return id;
  }
}

/** The largest field number a `nested` table may name (the remote and gossip protos use up to 7). */
const MAX_NESTED_FIELD = 1_024;

const schemas = new WeakMap<object, Schema>();

function schemaOf(nested: Readonly<Record<string, Readonly<Record<number, string>>>>): Schema {
  let schema = schemas.get(nested);
  if (schema === undefined) schemas.set(nested, (schema = new Schema(nested)));
  return schema;
}

/** One walk over one message's bytes (see `inspectMessage`). */
class ShapeWalker {
  /** Where the last slow-path varint ended (`varint`). */
  private next = 0;
  private entries = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly schema: Schema,
    /** Per message index: how many messages one may hold directly (Infinity: no bound). */
    private readonly limits: readonly number[],
    private readonly maxValues: number,
  ) {}

  /** Walk the fields of one `message` in bytes [start, end). */
  walk(message: number, start: number, end: number): void {
    const bytes = this.bytes;
    const kids = this.schema.children[message]!;
    const maxInside = this.limits[message]!;
    let children = 0;
    let pos = start;
    while (pos < end) {
      // NOTE: nearly every tag and length of a frame is one byte: that case inline, in
      // integer arithmetic (a tag read by `varint` is a double: `% 8` on it is a call to fmod).
      let field: number;
      let wireType: number;
      const first = bytes[pos]!;
      if (first < 0x80) {
        pos++;
        field = first >> 3;
        wireType = first & 7;
      } else {
        const tag = this.varint(pos, end);
        pos = this.next;
        field = Math.floor(tag / 8) >>> 0;
        wireType = (tag % 8) | 0;
      }
      if (field === 0) throw new Malformed('field number 0');
      if (++this.entries > this.maxValues) throw new OverLimit(`more than ${this.maxValues} values`);
      switch (wireType) {
        case 0:
          if (pos < end && bytes[pos]! < 0x80) pos++;
          else {
            this.varint(pos, end);
            pos = this.next;
          }
          break;
        case 1:
        case 5: {
          const size = wireType === 1 ? 8 : 4;
          if (end - pos < size) throw new Malformed('a value runs past its end');
          pos += size;
          break;
        }
        case 2: {
          let length: number;
          if (pos < end && bytes[pos]! < 0x80) length = bytes[pos++]!;
          else {
            length = this.varint(pos, end);
            pos = this.next;
          }
          if (length > end - pos) throw new Malformed('a length runs past its end');
          const inner = field < kids.length ? kids[field]! : -1;
          if (inner >= 0) {
            if (++children > maxInside) {
              const name = this.schema.names[message]!;
              throw new OverLimit(`more than ${maxInside} ${name === 'Batch' ? 'requests' : `entries in one ${name}`}`);
            }
            this.walk(inner, pos, pos + length);
          }
          pos += length;
          break;
        }
        default:
          throw new Malformed(`wire type ${wireType}`);
      }
    }
  }

  /** The varint at `pos` (its end in `next`). */
  private varint(pos: number, end: number): number {
    const bytes = this.bytes;
    let value = 0;
    // NOTE: 2 ** shift, kept as a product: `**` on a variable is a call to pow for every byte.
    let scale = 1;
    for (let shift = 0; shift < 70; shift += 7, scale *= 128) {
      if (pos >= end) throw new Malformed('a value runs past its end');
      const byte = bytes[pos++]!;
      // NOTE: only lengths and tags are read as numbers here, and both fit in 32 bits.
      if (shift < 32) value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        this.next = pos;
        return value;
      }
    }
    throw new Malformed('a varint of more than 10 bytes');
  }
}

// Requests ------------------------------------------------------------------------------------

/**
 * The longest `traceparent` a request may carry; a longer one is ignored. Version 00, what
 * members write, is 55 characters; W3C lets later versions append fields, which a reader of
 * version 00 skips (trace-context.ts), so some room is left for them.
 */
export const MAX_TRACEPARENT_CHARS = 256;
/** The longest `tracestate` a request may carry (W3C's bound). A longer one is ignored. */
export const MAX_TRACESTATE_CHARS = 512;

/**
 * The `traceparent` of a peer's request as this member takes it: '' when absent or longer than
 * MAX_TRACEPARENT_CHARS. NOTE: never a refusal (`requestProblem` does not look at the trace
 * context): a call whose trace context is dropped is served all the same, as the root of a
 * new trace. lib/observability parses what is left, only when something records spans.
 */
export function inboundTraceparent(request: WireRequest): string {
  const value = request.traceparent;
  return value === undefined || value.length > MAX_TRACEPARENT_CHARS ? '' : value;
}

/** The `tracestate` of a peer's request as this member takes it: '' when absent or longer than MAX_TRACESTATE_CHARS (ignored, like an oversized `traceparent`). */
export function inboundTracestate(request: WireRequest): string {
  const value = request.tracestate;
  return value === undefined || value.length > MAX_TRACESTATE_CHARS ? '' : value;
}

/**
 * Why a peer's request is refused (BAD_REQUEST, never run) before the cluster sees it, or
 * undefined. Constant time: string lengths, chain length, timeout. The refusal never repeats
 * what the peer sent. Its trace context is never a reason (`inboundTraceparent`).
 */
export function requestProblem(request: WireRequest, strings: readonly string[], limits: InboundLimits): string | undefined {
  if (request.timeoutMs > limits.maxTimeoutMs) {
    return `a timeout of ${request.timeoutMs} ms is more than this member accepts (${limits.maxTimeoutMs} ms, remote.inbound.maxTimeoutMs)`;
  }
  if (request.chain.length > limits.maxChainLength) {
    return `a call chain of ${request.chain.length} links is more than this member accepts (${limits.maxChainLength}, remote.inbound.maxChainLength)`;
  }
  const identity = strings[request.identity]!;
  // NOTE: a UTF-16 unit is at least one UTF-8 byte: longer is too long, whatever it holds; the
  // identity rule (cluster/identity-rule.ts) then counts the bytes of what is left.
  if (identity.length > limits.maxIdentityBytes) {
    return `a grain identity may be at most ${limits.maxIdentityBytes} UTF-8 bytes, got ${identity.length} characters or more`;
  }
  const maxName = limits.maxIdentityBytes + NAME_ALLOWANCE;
  const long = (i: number) => strings[i]!.length > maxName;
  if (long(request.kind) || long(request.method) || long(request.targetIncarnation)) {
    return `a kind, method or incarnation of more than ${maxName} characters`;
  }
  for (const link of request.chain) {
    if (long(link.activationId) || long(link.label)) return `a call chain entry of more than ${maxName} characters`;
  }
  return undefined;
}
