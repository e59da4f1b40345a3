import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

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
const MAX_STATUS = 16;

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
  expectedIncarnation: string;
}

export interface HandshakeAck {
  accepted: boolean;
  protocol: number;
  member: MemberInfo;
  reason: string;
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
}

export interface RemoteErrorInfo {
  name: string;
  message: string;
  code: string;
  origin: string;
  cycle: string[];
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

export type Frame = { handshake: Handshake } | { handshakeAck: HandshakeAck } | { batch: Batch };

/** A frame or message that does not hold what remote.proto promises. */
export class WireError extends Error {
  readonly code = 'WIRE_MALFORMED';
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

const root = protobuf.loadSync(join(findProtoDir(), 'remote.proto'));
const FrameType = root.lookupType('nestjs_grains.remote.v1.Frame');

/** Encode a frame (protobufjs generates the encoder once, at first use). */
export function encodeFrame(frame: Frame): Buffer {
  const bytes = FrameType.encode(frame as unknown as protobuf.Message).finish();
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
  throw new WireError('empty frame');
}

function validMember(member: MemberInfo | null | undefined): MemberInfo {
  if (member == null || member.memberId === '' || member.incarnation === '') throw new WireError('member info without id or incarnation');
  return { memberId: member.memberId, incarnation: member.incarnation, address: member.address, kinds: [...member.kinds] };
}

function validHandshake(h: Handshake): Handshake {
  if (h.clusterName === '') throw new WireError('handshake without cluster name');
  return { clusterName: h.clusterName, member: validMember(h.member), minProtocol: h.minProtocol, maxProtocol: h.maxProtocol, codec: h.codec, expectedIncarnation: h.expectedIncarnation };
}

function validAck(a: HandshakeAck): HandshakeAck {
  return { accepted: a.accepted, protocol: a.protocol, member: a.accepted ? validMember(a.member) : (a.member ?? { memberId: '', incarnation: '', address: '', kinds: [] }), reason: a.reason };
}

function validBatch(batch: Batch): Batch {
  const size = batch.strings.length;
  const index = (i: number, what: string) => {
    if (i >= size) throw new WireError(`${what} index ${i} outside the batch's ${size} strings`);
  };
  for (const request of batch.requests) {
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
    if (response.status < 1 || response.status > MAX_STATUS) throw new WireError(`unknown status ${response.status}`);
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
