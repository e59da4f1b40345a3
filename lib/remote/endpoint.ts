import { type Client, type ClientDuplexStream, credentials, makeGenericClientConstructor } from '@grpc/grpc-js';
import type { DeadlineSweeper, Sweepable } from '../actor/deadline-sweeper.js';
import { Backoff, INITIAL_BACKOFF_MS, MAX_BACKOFF_MS } from './backoff.js';
import { BatchWriter } from './batch-writer.js';
import type { OutboundRequest } from './envelopes.js';
import { KEEPALIVE_OPTIONS, remotingService } from './service-definition.js';
import { decodeFrame, encodeFrame, type Handshake, type MemberInfo, type WireResponse, type WireError } from './wire.js';

/** Why a request did not get a response. */
export type FailureReason =
  /** The peer refused the handshake (another cluster, no common protocol, another codec). */
  | 'refused'
  /** The stream could not be opened or broke. */
  | 'disconnected'
  /** The per-peer queue was full. */
  | 'overloaded'
  /** The endpoint was closed (member shutting down). */
  | 'closed';

/** Where an endpoint reports outcomes; implemented by the cluster. */
export interface EndpointEvents {
  response(request: OutboundRequest, response: WireResponse, strings: readonly string[]): void;
  /** No response will come. `written` says whether the request may have reached the peer. */
  failed(request: OutboundRequest, written: boolean, reason: FailureReason, detail: string): void;
  /** The caller's deadline passed while waiting; a late response is dropped. */
  expired(request: OutboundRequest): void;
  /** A handshake succeeded: what the peer is now, and the protocol version negotiated with it. */
  peer(info: MemberInfo, protocol: number): void;
  log(level: 'warn' | 'log', message: string): void;
}

export interface EndpointSettings {
  readonly handshake: () => Handshake;
  readonly maxMessageSize: number;
  readonly maxQueued: number;
  readonly sweeper: DeadlineSweeper;
  readonly events: EndpointEvents;
}

const RemotingClient = makeGenericClientConstructor(remotingService, 'Remoting');
const State = { Idle: 0, Connecting: 1, Ready: 2, Closed: 3 } as const;
type State = (typeof State)[keyof typeof State];

/**
 * The connection to one peer: one bidirectional gRPC stream carrying this member's requests
 * to it and their responses. Opens on demand, handshakes before anything else is written,
 * reconnects with backoff and jitter while there are calls for the peer, and accounts for
 * every request: answered, expired, or failed as never written / possibly written.
 */
export class Endpoint implements Sweepable {
  private state: State = State.Idle;
  private client: Client | undefined;
  private stream: ClientDuplexStream<Buffer, Buffer> | undefined;
  private writer: BatchWriter | undefined;
  /** Waiting for the stream to be ready. */
  private waiting: OutboundRequest[] = [];
  private readonly inFlight = new Map<number, OutboundRequest>();
  private nextId = 0;
  private readonly backoff = new Backoff();
  private retryTimer: NodeJS.Timeout | undefined;
  private watched = false;
  private nextCheck = Infinity;
  /** The peer as of the last accepted handshake. */
  peer: MemberInfo | undefined;
  /** The protocol version of the last accepted handshake; undefined until one is accepted. */
  protocol: number | undefined;

  constructor(
    readonly address: string,
    private readonly settings: EndpointSettings,
  ) {}

  send(request: OutboundRequest): void {
    if (this.state === State.Closed) {
      this.settings.events.failed(request, false, 'closed', 'the member is shutting down');
      return;
    }
    request.id = this.nextId = (this.nextId + 1) >>> 0;
    this.watch(request.call.deadline);
    if (this.state === State.Ready) {
      this.inFlight.set(request.id, request);
      if (!this.writer!.enqueueRequest(request)) {
        this.inFlight.delete(request.id);
        this.settings.events.failed(request, false, 'overloaded', `more than ${this.settings.maxQueued} envelopes wait for ${this.address}`);
      }
      return;
    }
    if (this.waiting.length >= this.settings.maxQueued) {
      this.settings.events.failed(request, false, 'overloaded', `more than ${this.settings.maxQueued} calls wait to connect to ${this.address}`);
      return;
    }
    this.waiting.push(request);
    if (this.state === State.Idle && this.retryTimer === undefined) this.connect();
  }

  /**
   * Open (or reopen) the stream now and handshake; used to learn a peer before calling it.
   * NOTE: an explicit probe does not wait out the reconnect backoff: the caller (a provider)
   * paces its own probes.
   */
  probe(): void {
    if (this.state !== State.Idle) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.connect();
  }

  close(): void {
    if (this.state === State.Closed) return;
    this.state = State.Closed;
    clearTimeout(this.retryTimer);
    const stream = this.stream;
    this.teardown('closed', 'the member is shutting down');
    stream?.cancel();
    this.client?.close();
  }

  sweep(at: number): boolean {
    if (this.inFlight.size === 0 && this.waiting.length === 0) {
      this.watched = false;
      return false;
    }
    if (at < this.nextCheck) return true;
    let next = Infinity;
    for (const [id, request] of this.inFlight) {
      if (request.call.deadline <= at || request.call.settled) {
        this.inFlight.delete(id);
        this.settings.events.expired(request);
      } else if (request.call.deadline < next) next = request.call.deadline;
    }
    const still: OutboundRequest[] = [];
    for (const request of this.waiting) {
      if (request.call.deadline <= at || request.call.settled) this.settings.events.expired(request);
      else {
        still.push(request);
        if (request.call.deadline < next) next = request.call.deadline;
      }
    }
    this.waiting = still;
    this.nextCheck = next;
    return true;
  }

  private watch(deadline: number): void {
    if (deadline < this.nextCheck) this.nextCheck = deadline;
    if (!this.watched) {
      this.watched = true;
      this.settings.sweeper.watch(this);
    }
  }

  private connect(): void {
    this.state = State.Connecting;
    this.client ??= new RemotingClient(this.address, credentials.createInsecure(), {
      ...KEEPALIVE_OPTIONS,
      // NOTE: grpc-js refuses new streams while its channel backs off after a failed connect
      // (1 s at first by default). This endpoint paces reconnects itself, so the channel's own
      // backoff (the subchannel's BackoffTimeout: first delay, cap) starts at ours.
      'grpc.initial_reconnect_backoff_ms': INITIAL_BACKOFF_MS,
      'grpc.max_reconnect_backoff_ms': MAX_BACKOFF_MS,
      // NOTE: read by the client transport only (a grpc-js server pings whether or not calls are
      // open): keep pinging while no stream is open, so a peer gone silent is noticed before a call waits on it.
      'grpc.keepalive_permit_without_calls': 1,
      // NOTE: grpc-js ends the stream carrying a message above these with RESOURCE_EXHAUSTED.
      'grpc.max_send_message_length': this.settings.maxMessageSize,
      'grpc.max_receive_message_length': this.settings.maxMessageSize,
    });
    const stream = (this.client as unknown as { connect(): ClientDuplexStream<Buffer, Buffer> }).connect();
    this.stream = stream;
    const hello = this.settings.handshake();
    let handshaken = false;
    stream.on('data', (chunk: Buffer) => {
      if (this.stream !== stream) return;
      let frame;
      try {
        frame = decodeFrame(chunk);
      } catch (error) {
        this.settings.events.log('warn', `Remote ${this.address}: dropped a malformed frame (${(error as WireError).message}).`);
        return;
      }
      if (!handshaken) {
        if (!('handshakeAck' in frame)) {
          this.fail(stream, 'disconnected', 'the peer did not answer the handshake');
          return;
        }
        const ack = frame.handshakeAck;
        if (!ack.accepted) {
          this.settings.events.log('warn', `Remote ${this.address} refused this member: ${ack.reason}`);
          this.fail(stream, 'refused', ack.reason);
          return;
        }
        if (ack.protocol < hello.minProtocol || ack.protocol > hello.maxProtocol) {
          // NOTE: untrusted: an ack "accepted" on a version this member does not speak cannot be
          // talked to, and will not be on the next try either; so it is a refusal, not a
          // disconnection to retry.
          const reason = `accepted on protocol version ${ack.protocol}, outside this member's ${hello.minProtocol}..${hello.maxProtocol}`;
          this.settings.events.log('warn', `Remote ${this.address} ${reason}; treated as a refusal.`);
          this.fail(stream, 'refused', reason);
          return;
        }
        handshaken = true;
        this.onReady(stream, ack.member, ack.protocol);
        return;
      }
      if ('handshakeAck' in frame) {
        // NOTE: the peer announces a change of its own (a new incarnation, after it was fenced
        // and rejoined) on the open stream, so calls stop targeting the old one. It may not
        // change who it is: an announcement under another member id is ignored.
        const ack = frame.handshakeAck;
        if (ack.accepted && this.peer !== undefined && ack.member.memberId === this.peer.memberId && this.protocol !== undefined) {
          this.peer = ack.member;
          this.settings.events.peer(ack.member, this.protocol);
        }
        return;
      }
      if ('batch' in frame) {
        for (const response of frame.batch.responses) {
          const request = this.inFlight.get(response.id);
          if (request === undefined) continue; // expired, or not ours: dropped
          this.inFlight.delete(response.id);
          this.settings.events.response(request, response, frame.batch.strings);
        }
      }
    });
    stream.on('error', (error: Error) => this.fail(stream, 'disconnected', error.message));
    stream.on('end', () => this.fail(stream, 'disconnected', 'the peer closed the stream'));
    stream.on('close', () => this.fail(stream, 'disconnected', 'the stream closed'));
    this.writer = new BatchWriter(stream, this.settings.maxQueued, (request) => {
      this.inFlight.delete(request.id);
      this.settings.events.expired(request);
    });
    stream.write(encodeHandshake(hello));
  }

  private onReady(stream: ClientDuplexStream<Buffer, Buffer>, peer: MemberInfo, protocol: number): void {
    if (this.stream !== stream) return;
    this.state = State.Ready;
    this.backoff.reset();
    this.peer = peer;
    this.protocol = protocol;
    this.settings.events.peer(peer, protocol);
    const waiting = this.waiting;
    this.waiting = [];
    for (const request of waiting) {
      if (request.call.settled) continue;
      this.inFlight.set(request.id, request);
      if (!this.writer!.enqueueRequest(request)) {
        this.inFlight.delete(request.id);
        this.settings.events.failed(request, false, 'overloaded', `more than ${this.settings.maxQueued} envelopes wait for ${this.address}`);
      }
    }
  }

  private fail(stream: ClientDuplexStream<Buffer, Buffer>, reason: FailureReason, detail: string): void {
    if (this.stream !== stream) return;
    this.teardown(reason, detail);
    stream.cancel();
    if (this.state === State.Closed) return;
    this.state = State.Idle;
    // NOTE: reconnect only while calls wait for this peer; otherwise the next call connects.
    const delay = this.backoff.next();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.state === State.Idle && this.waiting.length > 0) this.connect();
    }, delay);
    this.retryTimer.unref();
  }

  /** Account for every request of the stream that ends. */
  private teardown(reason: FailureReason, detail: string): void {
    const stream = this.stream;
    this.stream = undefined;
    const unwritten = this.writer?.close() ?? [];
    this.writer = undefined;
    const unwrittenIds = new Set(unwritten.map((r) => r.id));
    const inFlight = [...this.inFlight.values()];
    this.inFlight.clear();
    for (const request of inFlight) {
      const written = request.written && !unwrittenIds.has(request.id);
      this.settings.events.failed(request, written, reason, detail);
    }
    // NOTE: calls still waiting for a stream were never written: the cluster may send them
    // on (resolving again) within their deadlines.
    void stream;
    const waiting = this.waiting;
    this.waiting = [];
    for (const request of waiting) this.settings.events.failed(request, false, reason, detail);
  }
}

function encodeHandshake(handshake: Handshake): Buffer {
  return encodeFrame({ handshake });
}
