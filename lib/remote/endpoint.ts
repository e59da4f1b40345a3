import { type ChannelCredentials, type Client, type ClientDuplexStream, credentials, makeGenericClientConstructor } from '@grpc/grpc-js';
import type { DeadlineSweeper, Sweepable } from '../actor/deadline-sweeper.js';
import { Backoff, INITIAL_BACKOFF_MS, MAX_BACKOFF_MS } from './backoff.js';
import { BatchWriter } from './batch-writer.js';
import { InFlightRequests } from './in-flight.js';
import type { OutboundRequest } from './envelopes.js';
import { KEEPALIVE_OPTIONS, remotingService } from './service-definition.js';
import type { LeavePhase } from './remote-server.js';
import { TLS_SERVER_NAME } from './tls.js';
import type { BatchMetrics } from '../observability/batch-metrics.js';
import { GOSSIP_PROTOCOL } from './protocol.js';
import { DEFAULT_MAX_REQUESTS_PER_BATCH, inspectFrame } from './inbound-limits.js';
import { decodeFrame, encodeFrame, type Handshake, type HandshakeAck, type MemberInfo, type WireResponse, WireError } from './wire.js';

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
  /**
   * A handshake on this member's connection to `address` succeeded, or the peer announced a
   * change on it: what the peer is now, the protocol version negotiated with it, and whether
   * it is leaving the cluster.
   */
  peer(info: MemberInfo, protocol: number, address: string, phase: LeavePhase): void;
  /** The peer answered a gossip push (`bytes`: a GossipMessage, unchecked). */
  gossip?(address: string, bytes: Uint8Array): void;
  /** The connection to `address` came up (a handshake accepted: `peer` answered) or dropped. */
  connection?(address: string, up: boolean, peer?: MemberInfo): void;
  log(level: 'warn' | 'log', message: string): void;
}

export interface EndpointSettings {
  readonly handshake: () => Handshake;
  readonly maxMessageSize: number;
  readonly maxQueued: number;
  /**
   * Bytes of requests that may wait per stream. NOTE: not read yet: the writer of connect()
   * uses DEFAULT_MAX_QUEUED_BYTES (64 MiB) until it passes this on.
   */
  readonly maxQueuedBytes?: number;
  /** TLS (the cluster CA, this member's certificate); plaintext when undefined. */
  readonly credentials?: ChannelCredentials;
  readonly sweeper: DeadlineSweeper;
  readonly events: EndpointEvents;
  /** Where frames written are recorded: the member's (one lookup for an SDK, when its remote was made); none without. */
  readonly batchMetrics?: BatchMetrics | null;
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
  private inFlight = new InFlightRequests();
  /**
   * Streams the peer said it is closing on (it left the cluster): ended on this side, still
   * read until the peer ends them, with the requests written on them before.
   */
  private readonly retired = new Map<ClientDuplexStream<Buffer, Buffer>, InFlightRequests>();
  private nextId = 0;
  private readonly backoff = new Backoff();
  private retryTimer: NodeJS.Timeout | undefined;
  private watched = false;
  /** Close once idle (the peer left the membership). */
  private closing = false;
  /** A failed TLS handshake was logged; not again until a handshake succeeds. */
  private tlsFailureLogged = false;
  private nextCheck = Infinity;
  /**
   * Runs once the callers answered by a frame have run (a microtask queued after their
   * continuations): what they asked next goes out now, not at the next turn with everything
   * else, so the peer works on it while this member reads the next frame. NOTE: measured
   * +3–5 % calls/s at 1,000 callers; the turn's own flush still writes what comes later.
   */
  private readonly flushAfterAnswers = () => this.writer?.flush();
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
      this.inFlight.add(request);
      if (!this.writer!.enqueueRequest(request)) {
        this.inFlight.take(request.id);
        this.settings.events.failed(request, false, 'overloaded', `more than ${this.settings.maxQueued} envelopes (or their bytes) wait for ${this.address}`);
        return;
      }
      // NOTE: the stream was idle (nothing else in flight or queued): written once the current
      // job's microtasks ran (calls sent before then share the frame), instead of at
      // the writer's flush in the check phase, whose write Node's http2 sends on the next loop
      // iteration. Measured 3–4 µs off the p50 of a lone call made from a task of its own (a
      // controller's); under load something is always in flight, and batching is as before.
      if (this.inFlight.size === 1 && this.writer!.queued === 1) queueMicrotask(this.flushAfterAnswers);
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
   * Push a gossip frame on the stream, when it is open on a protocol that has them; false
   * otherwise (and, when idle and not backing off, the stream opens for the next push).
   */
  gossip(bytes: Uint8Array): boolean {
    if (this.state === State.Ready) {
      if (this.protocol === undefined || this.protocol < GOSSIP_PROTOCOL) return false;
      return this.writer?.writeNow(encodeFrame({ gossip: bytes })) ?? false;
    }
    if (this.state === State.Idle && this.retryTimer === undefined) this.connect();
    return false;
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
    for (const [retired, inFlight] of this.retired) {
      this.retired.delete(retired);
      for (const request of inFlight.list()) this.settings.events.failed(request, request.written, 'closed', 'the member is shutting down');
      retired.cancel();
    }
    this.client?.close();
  }

  /** True once closed (the member shut down, or the peer left and nothing was in flight). */
  get closed(): boolean {
    return this.state === State.Closed;
  }

  /** True when nothing is waiting for, or in flight to, the peer. */
  get idle(): boolean {
    return this.inFlight.size === 0 && this.waiting.length === 0 && this.retired.size === 0;
  }

  /** Close once nothing is waiting or in flight (checked now and as requests settle). */
  closeWhenIdle(): void {
    this.closing = true;
    if (this.idle) this.close();
  }

  sweep(at: number): boolean {
    if (this.idle) {
      this.watched = false;
      if (this.closing) this.close();
      return false;
    }
    if (at < this.nextCheck) return true;
    let next = Infinity;
    // NOTE: a request sent from an `expired` callback below is not in the copies walked here:
    // its deadline lowers `nextCheck` (`watch`), which is kept.
    this.nextCheck = Infinity;
    for (const inFlight of [this.inFlight, ...this.retired.values()]) {
      for (const request of inFlight.list()) {
        if (request.call.deadline <= at || request.call.settled) {
          // NOTE: let go of meanwhile (a callback closed the endpoint): already accounted for.
          if (inFlight.take(request.id) === undefined) continue;
          this.settings.events.expired(request);
        } else if (request.call.deadline < next) next = request.call.deadline;
      }
    }
    for (const [stream, inFlight] of this.retired) {
      // NOTE: nothing left to wait for on a retired stream: let it go now, not when the peer ends it.
      if (inFlight.size === 0) {
        this.retired.delete(stream);
        stream.cancel();
      }
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
    this.nextCheck = Math.min(this.nextCheck, next);
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
    this.client ??= new RemotingClient(this.address, this.settings.credentials ?? credentials.createInsecure(), {
      ...KEEPALIVE_OPTIONS,
      // NOTE: the server name sent over TLS (SNI), instead of the peer's IP address; the peer's
      // certificate is not checked against any name (tls.ts).
      ...(this.settings.credentials !== undefined && { 'grpc.ssl_target_name_override': TLS_SERVER_NAME }),
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
      if (this.stream !== stream) {
        this.readRetired(stream, chunk);
        return;
      }
      let frame;
      try {
        // NOTE: the callee is untrusted too: a frame's shape is checked on its bytes before
        // protobufjs decodes it (a huge frame of empty envelopes would stall this member).
        const problem = inspectFrame(chunk, DEFAULT_MAX_REQUESTS_PER_BATCH);
        if (problem !== undefined) throw new WireError(problem);
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
        this.onReady(stream, ack);
        return;
      }
      if ('handshakeAck' in frame) {
        // NOTE: the peer announces a change of its own (a new incarnation, after it was fenced
        // and rejoined) on the open stream, so calls stop targeting the old one. It may not
        // change who it is: an announcement under another member id is ignored.
        const ack = frame.handshakeAck;
        if (ack.accepted && this.peer !== undefined && ack.member.memberId === this.peer.memberId && this.protocol !== undefined) {
          this.peer = ack.member;
          this.settings.events.peer(ack.member, this.protocol, this.address, phaseOf(ack));
          if (ack.closing) this.retire(stream);
        }
        return;
      }
      if ('gossip' in frame) {
        if (this.protocol !== undefined && this.protocol >= GOSSIP_PROTOCOL) this.settings.events.gossip?.(this.address, frame.gossip);
        return;
      }
      if ('batch' in frame) {
        for (const response of frame.batch.responses) {
          const request = this.inFlight.take(response.id);
          if (request === undefined) continue; // expired, or not ours: dropped
          this.settings.events.response(request, response, frame.batch.strings);
        }
        if (frame.batch.responses.length > 0) queueMicrotask(this.flushAfterAnswers);
      }
    });
    stream.on('error', (error: Error) => this.ended(stream, error.message));
    stream.on('end', () => this.ended(stream, 'the peer closed the stream'));
    stream.on('close', () => this.ended(stream, 'the stream closed'));
    this.writer = new BatchWriter(
      stream,
      this.settings.maxQueued,
      (request) => {
        this.inFlight.take(request.id);
        this.settings.events.expired(request);
      },
      this.settings.maxQueuedBytes,
      this.settings.batchMetrics ?? null,
    );
    stream.write(encodeHandshake(hello));
  }

  private onReady(stream: ClientDuplexStream<Buffer, Buffer>, ack: HandshakeAck): void {
    if (this.stream !== stream) return;
    this.state = State.Ready;
    this.backoff.reset();
    this.tlsFailureLogged = false;
    this.peer = ack.member;
    this.protocol = ack.protocol;
    this.settings.events.peer(ack.member, ack.protocol, this.address, phaseOf(ack));
    this.settings.events.connection?.(this.address, true, ack.member);
    if (ack.closing) {
      this.retire(stream);
      return;
    }
    const waiting = this.waiting;
    this.waiting = [];
    for (const request of waiting) {
      if (request.call.settled) continue;
      this.inFlight.add(request);
      if (!this.writer!.enqueueRequest(request)) {
        this.inFlight.take(request.id);
        this.settings.events.failed(request, false, 'overloaded', `more than ${this.settings.maxQueued} envelopes wait for ${this.address}`);
      }
    }
  }

  /**
   * The peer has drained and is closing: end this side of the stream (the peer answers what
   * was written and then ends it), and send nothing more to it on this stream. Calls not
   * written yet never ran: they go back to the cluster, which resolves them again.
   */
  private retire(stream: ClientDuplexStream<Buffer, Buffer>): void {
    if (this.stream !== stream) return;
    const unwritten = this.writer?.close() ?? [];
    this.writer = undefined;
    this.stream = undefined;
    for (const request of unwritten) this.inFlight.take(request.id);
    if (this.inFlight.size > 0) {
      this.retired.set(stream, this.inFlight);
      this.inFlight = new InFlightRequests();
      stream.end();
    } else {
      stream.cancel();
    }
    if (this.state !== State.Closed) this.state = State.Idle;
    const waiting = this.waiting;
    this.waiting = [];
    for (const request of [...unwritten, ...waiting]) this.settings.events.failed(request, false, 'disconnected', `${this.address} left the cluster`);
  }

  /** Read a response on a stream retired while the peer closes; other frames there mean nothing now. */
  private readRetired(stream: ClientDuplexStream<Buffer, Buffer>, chunk: Buffer): void {
    const inFlight = this.retired.get(stream);
    if (inFlight === undefined) return;
    let frame;
    try {
      if (inspectFrame(chunk, DEFAULT_MAX_REQUESTS_PER_BATCH) !== undefined) return;
      frame = decodeFrame(chunk);
    } catch {
      return;
    }
    if (!('batch' in frame)) return;
    for (const response of frame.batch.responses) {
      const request = inFlight.take(response.id);
      if (request === undefined) continue;
      this.settings.events.response(request, response, frame.batch.strings);
    }
    if (inFlight.size === 0) {
      this.retired.delete(stream);
      stream.cancel();
    }
  }

  private ended(stream: ClientDuplexStream<Buffer, Buffer>, detail: string): void {
    const inFlight = this.retired.get(stream);
    if (inFlight === undefined) {
      this.fail(stream, 'disconnected', detail);
      return;
    }
    this.retired.delete(stream);
    for (const request of inFlight.list()) this.settings.events.failed(request, request.written, 'disconnected', detail);
  }

  private fail(stream: ClientDuplexStream<Buffer, Buffer>, reason: FailureReason, detail: string): void {
    if (this.stream !== stream) return;
    if (this.settings.credentials !== undefined && !this.tlsFailureLogged && TLS_FAILURE.test(detail)) {
      // NOTE: a peer that is not a member of this CA, or speaks plaintext, is otherwise only "unreachable".
      this.tlsFailureLogged = true;
      this.settings.events.log(
        'warn',
        `Remote ${this.address}: the TLS handshake failed (${tlsReason(detail)}); is it a member with remote.tls and a certificate of the cluster CA?`,
      );
    }
    this.teardown(reason, detail);
    stream.cancel();
    if (this.state === State.Closed) return;
    this.state = State.Idle;
    if (reason === 'disconnected') this.settings.events.connection?.(this.address, false);
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
    const inFlight = this.inFlight.list();
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

/** How grpc-js reports a connection that failed its TLS handshake (OpenSSL's and Node's words). */
const TLS_FAILURE = /SSL routines|certificate|\bTLS\b|secure TLS connection/i;

/** The reason in a grpc-js connection failure: OpenSSL's (`wrong version number`) or Node's (`self-signed certificate in certificate chain`). */
function tlsReason(detail: string): string {
  const openssl = /SSL routines:[^:]*:([^:]+)/.exec(detail);
  if (openssl !== null) return openssl[1]!.trim();
  const last = /Last error: (?:Error: )?([\s\S]*?)\.?\s*(?:Resolution note:|$)/.exec(detail);
  return (last?.[1] ?? detail).replace(/\s+/g, ' ').trim();
}

function phaseOf(ack: HandshakeAck): LeavePhase {
  return ack.closing ? 'closing' : ack.leaving ? 'leaving' : 'active';
}

function encodeHandshake(handshake: Handshake): Buffer {
  return encodeFrame({ handshake });
}
