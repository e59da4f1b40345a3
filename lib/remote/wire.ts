import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { contractDrift, fieldsOf, type WireContract } from './wire-contract.js';

/** The package of remote.proto. */
const PROTO_PACKAGE = 'nestjs_grains.remote.v1';

/** The Status enum of remote.proto. */
export const Status = {
  OK: 1,
  INVOCATION_FAILED: 2,
  NOT_HERE: 3,
  EXPIRED: 4,
  OVERLOADED: 5,
  CALL_CYCLE: 6,
  UNKNOWN_KIND: 7,
  METHOD_NOT_CALLABLE: 8,
  ACTIVATION_FAILED: 9,
  SHUTTING_DOWN: 10,
  TIMEOUT: 11,
  BAD_REQUEST: 12,
  TOO_LARGE: 13,
  UNAVAILABLE: 14,
  OUTCOME_UNKNOWN: 15,
  IDENTITY_REFUSED: 16,
} as const;
export type Status = (typeof Status)[keyof typeof Status];
/**
 * Status's zero in remote.proto. NOTE: proto3 wants every enum to start at 0, which is also
 * what an unset field decodes to; so it is never a status, and not in `Status`.
 */
const STATUS_UNSPECIFIED = 0;
/** The statuses a response may carry. */
const STATUSES: ReadonlySet<number> = new Set(Object.values(Status));

export interface MemberInfo {
  memberId: string;
  incarnation: string;
  address: string;
  kinds: string[];
}

export interface Handshake {
  clusterName: string;
  member: MemberInfo;
  minProtocol: number;
  maxProtocol: number;
  codec: string;
}

export interface HandshakeAck {
  accepted: boolean;
  protocol: number;
  member: MemberInfo;
  reason: string;
  /** The callee is leaving the cluster: no new grains go there; it serves the ones it hosts until drained. */
  leaving: boolean;
  /** The callee has drained: write nothing more on this stream and end it; what was written is still answered. */
  closing: boolean;
}

export interface WireChainLink {
  activationId: number;
  label: number;
  interleaved: boolean;
}

export interface WireRequest {
  id: number;
  kind: number;
  identity: number;
  method: number;
  args: Uint8Array;
  timeoutMs: number;
  chain: WireChainLink[];
  /** Index into the batch's strings. */
  targetIncarnation: number;
  /** The caller's W3C trace context; absent or '' when the call is not traced. Untrusted: inbound-limits.ts bounds it, lib/observability parses it. */
  traceparent?: string | undefined;
  tracestate?: string | undefined;
}

export interface RemoteErrorInfo {
  name: string;
  message: string;
  code: string;
  origin: string;
  cycle: string[];
  /** INVOCATION_FAILED: the HTTP status the grain's error had (`getStatus()`); absent or 0 when none. Untrusted: the caller checks it. */
  httpStatus?: number;
  /** INVOCATION_FAILED: its `getResponse()` as JSON, when `httpStatus` is set; absent or '' when none. Untrusted: the caller checks it. */
  httpResponse?: string;
}

export interface WireResponse {
  id: number;
  status: Status;
  result: Uint8Array;
  error: RemoteErrorInfo | null;
}

export interface Batch {
  strings: string[];
  requests: WireRequest[];
  responses: WireResponse[];
}

/** `gossip`: a GossipMessage of gossip.proto (protocol 2+), decoded by the cluster's gossip, not here. */
export type Frame = { handshake: Handshake } | { handshakeAck: HandshakeAck } | { batch: Batch } | { gossip: Uint8Array };

/** A frame or message that does not hold what remote.proto promises. */
export class WireError extends Error {
  readonly code = 'WIRE_MALFORMED';
}

/** The path of `name` in the package's proto/ folder (remote.proto, gossip.proto). */
export function protoFile(name: string): string {
  return join(findProtoDir(), name);
}

function findProtoDir(): string {
  // NOTE: the same code runs from lib/remote (tests) and dist/lib/remote (built), so the
  // contracts are found by walking up to the package's proto/ folder.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'proto', 'remote.proto'))) return join(dir, 'proto');
    dir = dirname(dir);
  }
  throw new Error('nestjs-grains: proto/remote.proto not found next to the package');
}

/**
 * What the types above assume of remote.proto (message → field names, enum → values),
 * checked against the loaded file when this module loads.
 */
export const WIRE_CONTRACT: WireContract = {
  protoPackage: PROTO_PACKAGE,
  messages: {
    Frame: fieldsOf<Frame>({ handshake: true, handshakeAck: true, batch: true, gossip: true }),
    MemberInfo: fieldsOf<MemberInfo>({ memberId: true, incarnation: true, address: true, kinds: true }),
    Handshake: fieldsOf<Handshake>({ clusterName: true, member: true, minProtocol: true, maxProtocol: true, codec: true }),
    HandshakeAck: fieldsOf<HandshakeAck>({ accepted: true, protocol: true, member: true, reason: true, leaving: true, closing: true }),
    Batch: fieldsOf<Batch>({ strings: true, requests: true, responses: true }),
    ChainLink: fieldsOf<WireChainLink>({ activationId: true, label: true, interleaved: true }),
    Request: fieldsOf<WireRequest>({
      id: true,
      kind: true,
      identity: true,
      method: true,
      args: true,
      timeoutMs: true,
      chain: true,
      targetIncarnation: true,
      traceparent: true,
      tracestate: true,
    }),
    RemoteError: fieldsOf<RemoteErrorInfo>({ name: true, message: true, code: true, origin: true, cycle: true, httpStatus: true, httpResponse: true }),
    Response: fieldsOf<WireResponse>({ id: true, status: true, result: true, error: true }),
  },
  enums: { Status: { STATUS_UNSPECIFIED, ...Status } },
};

const root = protobuf.loadSync(join(findProtoDir(), 'remote.proto'));
// NOTE: the types above are written by hand; a remote.proto edited without them (or the
// reverse) fails here, at import, rather than as garbled frames between members.
const drift = contractDrift(root, WIRE_CONTRACT);
if (drift.length > 0) throw new Error(`nestjs-grains: lib/remote/wire.ts and proto/remote.proto disagree:\n- ${drift.join('\n- ')}`);
const FrameType = root.lookupType(`${PROTO_PACKAGE}.Frame`);

/** Encode a frame (protobufjs generates the encoder once, at first use). */
export function encodeFrame(frame: Frame): Buffer {
  const bytes = FrameType.encode(wellFormedFrame(frame) as unknown as protobuf.Message).finish();
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Decode and validate a frame from a peer. Untrusted bytes: anything that does not decode,
 * or decodes to indexes outside the batch's string table or unknown statuses, throws
 * WireError — it never reaches the runtime.
 */
export function decodeFrame(bytes: Uint8Array): Frame {
  let message: Record<string, unknown>;
  try {
    message = FrameType.decode(bytes) as unknown as Record<string, unknown>;
  } catch (error) {
    throw new WireError(`undecodable frame: ${(error as Error).message}`);
  }
  if (message['handshake'] != null) return { handshake: validHandshake(message['handshake'] as Handshake) };
  if (message['handshakeAck'] != null) return { handshakeAck: validAck(message['handshakeAck'] as HandshakeAck) };
  if (message['batch'] != null) return { batch: validBatch(message['batch'] as Batch) };
  // NOTE: checked by name too: an absent bytes field may read as its default (an empty array).
  if (message['body'] === 'gossip' && message['gossip'] instanceof Uint8Array) return { gossip: message['gossip'] };
  throw new WireError('empty frame');
}

/**
 * `frame`, or a copy whose strings hold U+FFFD for lone surrogates. NOTE: protobufjs writes a
 * lone surrogate as bytes that are not UTF-8, and its decoder refuses the whole frame for them
 * (proto3 strings are UTF-8): one grain error message cut in the middle of an emoji would lose
 * every response of its batch. The codec turns lone surrogates into U+FFFD too.
 */
function wellFormedFrame(frame: Frame): Frame {
  if ('batch' in frame) {
    const batch = frame.batch;
    const strings = batch.strings.every(isWellFormed) ? batch.strings : batch.strings.map((s) => s.toWellFormed());
    const responses = batch.responses.every((r) => r.error == null || wellFormedValue(r.error) === r.error)
      ? batch.responses
      : batch.responses.map((r) => (r.error == null ? r : { ...r, error: wellFormedValue(r.error) }));
    return strings === batch.strings && responses === batch.responses ? frame : { batch: { ...batch, strings, responses } };
  }
  // Handshakes: rare, and all strings.
  return wellFormedValue(frame);
}

function isWellFormed(s: string): boolean {
  return s.isWellFormed();
}

/** `value`, or a copy with well-formed strings, through plain objects and arrays. */
function wellFormedValue<T>(value: T): T {
  if (typeof value === 'string') return (value.isWellFormed() ? value : value.toWellFormed()) as T;
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) {
    const items = value.map(wellFormedValue);
    return (items.every((item, i) => item === value[i]) ? value : items) as T;
  }
  const object = value as Record<string, unknown>;
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(object)) {
    const fixed = wellFormedValue(object[key]);
    if (fixed !== object[key]) (copy ??= { ...object })[key] = fixed;
  }
  return (copy ?? value) as T;
}

function validMember(member: MemberInfo | null | undefined): MemberInfo {
  if (member == null || member.memberId === '' || member.incarnation === '') throw new WireError('member info without id or incarnation');
  return { memberId: member.memberId, incarnation: member.incarnation, address: member.address, kinds: [...member.kinds] };
}

function validHandshake(h: Handshake): Handshake {
  if (h.clusterName === '') throw new WireError('handshake without cluster name');
  return { clusterName: h.clusterName, member: validMember(h.member), minProtocol: h.minProtocol, maxProtocol: h.maxProtocol, codec: h.codec };
}

function validAck(a: HandshakeAck): HandshakeAck {
  return {
    accepted: a.accepted,
    protocol: a.protocol,
    member: a.accepted ? validMember(a.member) : (a.member ?? { memberId: '', incarnation: '', address: '', kinds: [] }),
    reason: a.reason,
    leaving: a.leaving === true,
    closing: a.closing === true,
  };
}

/** An absent bytes field. */
const NO_BYTES = new Uint8Array(0);

function validBatch(batch: Batch): Batch {
  const size = batch.strings.length;
  const index = (i: number, what: string) => {
    if (i >= size) throw new WireError(`${what} index ${i} outside the batch's ${size} strings`);
  };
  for (const request of batch.requests) {
    // NOTE: protobufjs leaves an empty bytes field out (proto3), and reads an absent one as
    // its default, an empty *array*: `result.byteLength` would be undefined, and an undefined
    // result (empty bytes) failed to decode. Absent bytes are empty bytes.
    if (!(request.args instanceof Uint8Array)) request.args = NO_BYTES;
    index(request.kind, 'kind');
    index(request.identity, 'identity');
    index(request.method, 'method');
    index(request.targetIncarnation, 'target incarnation');
    for (const link of request.chain) {
      index(link.activationId, 'chain activation');
      index(link.label, 'chain label');
    }
  }
  for (const response of batch.responses) {
    if (!(response.result instanceof Uint8Array)) response.result = NO_BYTES;
    if (!STATUSES.has(response.status)) throw new WireError(`unknown status ${response.status}`);
    if (response.status !== Status.OK && response.error == null) throw new WireError(`status ${response.status} without an error`);
  }
  return batch;
}

/** Builds a Batch's string table: each distinct string once. */
export class StringTable {
  readonly strings: string[] = [];
  private readonly index = new Map<string, number>();

  ref(value: string): number {
    let i = this.index.get(value);
    if (i === undefined) {
      i = this.strings.length;
      this.strings.push(value);
      this.index.set(value, i);
    }
    return i;
  }
}
