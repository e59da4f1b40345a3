import { randomUUID } from 'node:crypto';
import { type ClientDuplexStream, credentials, makeGenericClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { defaultCodec } from '../../lib/remote/codec/default-codec.js';
import { PROTOCOL_MAX, PROTOCOL_MIN } from '../../lib/remote/protocol.js';
import { remotingService } from '../../lib/remote/service-definition.js';
import {
  type Batch,
  decodeFrame,
  encodeFrame,
  type Frame,
  type Handshake,
  type HandshakeAck,
  type WireRequest,
  type WireResponse,
} from '../../lib/remote/wire.js';

/** The codec members use by default (to encode arguments and decode results by hand). */
export const codec = defaultCodec(4 * 1024 * 1024);

const RemotingClient = makeGenericClientConstructor(remotingService, 'Remoting');

/** A handshake as a member of `clusterName` would send it; override any field. */
export function handshake(clusterName: string, overrides: Partial<Handshake> = {}): Handshake {
  return {
    clusterName,
    member: { memberId: `raw-peer-${randomUUID().slice(0, 8)}`, incarnation: randomUUID(), address: '', kinds: [] },
    minProtocol: PROTOCOL_MIN,
    maxProtocol: PROTOCOL_MAX,
    codec: codec.name,
    ...overrides,
  };
}

export interface RequestSpec {
  id: number;
  kind: string;
  identity: string;
  method: string;
  /** Encoded with the default codec unless `rawArgs` is given. */
  args?: unknown[];
  rawArgs?: Uint8Array;
  timeoutMs?: number;
  chain?: Array<{ activationId: string; label: string; interleaved?: boolean }>;
  targetIncarnation?: string;
}

/** A batch frame of well-formed requests (with its string table). */
export function requestBatch(requests: RequestSpec[]): Frame {
  const strings: string[] = [];
  const ref = (s: string) => {
    let i = strings.indexOf(s);
    if (i < 0) i = strings.push(s) - 1;
    return i;
  };
  const wire: WireRequest[] = requests.map((r) => ({
    id: r.id,
    kind: ref(r.kind),
    identity: ref(r.identity),
    method: ref(r.method),
    args: r.rawArgs ?? codec.encode(r.args ?? []),
    timeoutMs: r.timeoutMs ?? 10_000,
    chain: (r.chain ?? []).map((l) => ({ activationId: ref(l.activationId), label: ref(l.label), interleaved: l.interleaved ?? false })),
    targetIncarnation: ref(r.targetIncarnation ?? ''),
  }));
  const batch: Batch = { strings, requests: wire, responses: [] };
  return { batch };
}

/**
 * A hand-driven peer: one `Remoting.Connect` stream to a member, opened with grpc-js and the
 * library's service definition, on which the test writes whatever bytes it likes and reads
 * back decoded frames.
 */
export class RawPeer {
  readonly frames: Frame[] = [];
  /** Every message the member sent, as bytes. */
  readonly raw: Buffer[] = [];
  /** Bytes the member sent that did not decode. */
  readonly undecodable: Error[] = [];
  /** Set when the stream ended: the gRPC status (0 = OK) and details. */
  status: { code: number; details: string } | undefined;
  readonly ended: Promise<{ code: number; details: string }>;
  private readonly client: InstanceType<typeof RemotingClient>;
  private readonly stream: ClientDuplexStream<Buffer, Buffer>;
  private readonly listeners = new Set<() => void>();

  /** `connection`: peers with different values get connections of their own (grpc-js shares one per target and options). */
  constructor(address: string, connection = 0) {
    this.client = new RemotingClient(address, credentials.createInsecure(), {
      'grpc.max_send_message_length': -1,
      'grpc.max_receive_message_length': -1,
      ...(connection !== 0 && { 'grpc.raw_peer_connection': connection }),
    });
    this.stream = (this.client as unknown as { connect(): ClientDuplexStream<Buffer, Buffer> }).connect();
    let resolveEnded!: (s: { code: number; details: string }) => void;
    this.ended = new Promise((resolve) => (resolveEnded = resolve));
    const finish = (status: { code: number; details: string }) => {
      if (this.status !== undefined) return;
      this.status = status;
      resolveEnded(status);
      this.notify();
    };
    this.stream.on('data', (chunk: Buffer) => {
      this.raw.push(chunk);
      try {
        this.frames.push(decodeFrame(chunk));
      } catch (error) {
        this.undecodable.push(error as Error);
      }
      this.notify();
    });
    this.stream.on('status', (s: { code: number; details: string }) => finish({ code: s.code, details: s.details }));
    this.stream.on('error', (e: ServiceError) => finish({ code: e.code ?? -1, details: e.details ?? e.message }));
  }

  /** Write a frame, or raw bytes. */
  send(frame: Frame | Uint8Array): void {
    this.stream.write(frame instanceof Uint8Array ? Buffer.from(frame) : encodeFrame(frame));
  }

  /** Handshake and wait for the ack. */
  async handshake(h: Handshake, timeoutMs = 10_000): Promise<HandshakeAck> {
    this.send({ handshake: h });
    const frame = await this.waitFrame((f) => 'handshakeAck' in f, timeoutMs, 'a handshake ack');
    return (frame as { handshakeAck: HandshakeAck }).handshakeAck;
  }

  /** Responses received so far, by request id. */
  responses(): Map<number, WireResponse> {
    const out = new Map<number, WireResponse>();
    for (const f of this.frames) if ('batch' in f) for (const r of f.batch.responses) out.set(r.id, r);
    return out;
  }

  /** Wait until a response for each id has arrived. */
  async waitResponses(ids: number[], timeoutMs = 10_000): Promise<Map<number, WireResponse>> {
    await this.until(() => ids.every((id) => this.responses().has(id)), timeoutMs, `responses ${ids.join(', ')}`);
    return this.responses();
  }

  async waitFrame(predicate: (f: Frame) => boolean, timeoutMs: number, what: string): Promise<Frame> {
    await this.until(() => this.frames.some(predicate), timeoutMs, what);
    return this.frames.find(predicate)!;
  }

  /** Resolves when `predicate` holds; rejects after `timeoutMs`, or when the stream ends first. */
  until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (predicate()) done(resolve);
        else if (this.status !== undefined) done(() => reject(new Error(`the stream ended (${this.status!.code} ${this.status!.details}) before ${what}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`no ${what} within ${timeoutMs} ms`))), timeoutMs);
      const done = (then: () => void) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        then();
      };
      this.listeners.add(check);
      check();
    });
  }

  /** End this side of the stream (half-close): the member answers what was written, then ends it. */
  end(): void {
    this.stream.end();
  }

  close(): void {
    this.stream.cancel();
    this.client.close();
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}
