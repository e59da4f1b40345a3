import { Server, ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';
import { batchMetrics } from '../observability/batch-metrics.js';
import { BatchWriter, DEFAULT_MAX_QUEUED_BYTES } from './batch-writer.js';
import { AdmittedRequest, type InboundRequest, type OutboundResponse } from './envelopes.js';
import { GOSSIP_PROTOCOL, negotiate, type ProtocolRange } from './protocol.js';
import { KEEPALIVE_OPTIONS, remotingService } from './service-definition.js';
import { inboundLimits, type InboundLimits, inboundTraceparent, inboundTracestate, inspectFrame, NAME_ALLOWANCE, requestProblem } from './inbound-limits.js';
import { PeerLog, quote } from './peer-log.js';
import { type Batch, decodeFrame, encodeFrame, type Frame, type Handshake, type HandshakeAck, type MemberInfo, Status, type WireRequest } from './wire.js';

/** How long a new stream may take to send its handshake before it is closed. */
const HANDSHAKE_TIMEOUT_MS = 5_000;
/** How long a caller may leave its answers unread (its stream congested) before its stream is closed. */
const CONGESTION_TIMEOUT_MS = 30_000;
/** How long `shutdown` waits for open streams to finish before it cuts them. */
const SHUTDOWN_GRACE_MS = 1_000;
/** How long `close` waits for callers to end their streams after being told this member is closing. */
export const DEFAULT_CLOSE_GRACE_MS = 2_000;

/** Where a member is in leaving the cluster, as its acks tell callers. */
export type LeavePhase = 'active' | 'leaving' | 'closing';

const NO_LINKS: InboundRequest['chain'] = [];

/** Who is at the other end of an inbound stream, once its handshake is accepted. */
interface Caller {
  readonly member: MemberInfo;
  /** The protocol version negotiated for this stream. */
  readonly protocol: number;
}

/** What the server needs from the member it serves; implemented by the cluster. */
export interface InboundHandler {
  readonly clusterName: string;
  readonly codecName: string;
  readonly protocol: ProtocolRange;
  self(): MemberInfo;
  /** Serve one request; `respond` queues the response on the caller's stream. */
  request(request: InboundRequest, respond: (response: OutboundResponse) => void, peer: MemberInfo): void;
  /** A caller's handshake was accepted: who it is, and the protocol version negotiated with it. */
  peer(info: MemberInfo, protocol: number): void;
  /**
   * A caller pushed gossip (`bytes`: a GossipMessage, unchecked); `reply` answers on its stream
   * (undefined while the stream takes no more). False: the bytes were not gossip (malformed).
   */
  gossip?(bytes: Uint8Array, reply: ((bytes: Uint8Array) => void) | undefined): boolean;
  log(level: 'warn' | 'log', message: string): void;
}

export interface RemoteServerSettings {
  readonly host: string;
  readonly port: number;
  readonly maxMessageSize: number;
  readonly maxQueued: number;
  /** What a peer may make this member do (inbound-limits.ts). @default `inboundLimits` of no options, identities of 1 KiB */
  readonly limits?: InboundLimits;
  /** Mutual TLS (tls.ts): only peers with a certificate of the cluster CA get through. Plaintext when undefined. */
  readonly credentials?: ServerCredentials;
}

/**
 * The member's gRPC server: accepts one stream per calling member, handshakes it (refusing
 * strangers, who learn nothing but that), then serves its requests and batches the responses
 * back. A malformed frame is logged and dropped; the stream and the member carry on, up to
 * `maxMalformedFramesPerStream`. What a peer may make it do is bounded (inbound-limits.ts),
 * and so are the log lines it causes (peer-log.ts).
 */
export class RemoteServer {
  private readonly server: Server;
  private readonly streams = new Set<ServerDuplexStream<Buffer, Buffer>>();
  /** The accepted callers of open streams. */
  private readonly callers = new Map<ServerDuplexStream<Buffer, Buffer>, Caller>();
  private phase: LeavePhase = 'active';
  /** Resolved when the last open stream ends (while closing). */
  private allEnded: (() => void) | undefined;
  private readonly limits: InboundLimits = this.settings.limits ?? inboundLimits(undefined, 1024, DEFAULT_MAX_QUEUED_BYTES);
  /** Open streams per connection (`ip:port`). */
  private readonly connections = new Map<string, number>();
  /** Accepted open streams per member id the caller claimed. */
  private readonly memberStreams = new Map<string, number>();
  /** How to close each open stream, for `makeRoomFor`. */
  private readonly shutters = new Map<ServerDuplexStream<Buffer, Buffer>, (reason: string) => void>();
  /** The inbound work of every stream, in one budget per event-loop turn. */
  private readonly budget = new InboundBudget();
  /** Frames written, recorded when an OpenTelemetry SDK was registered as the server was made. */
  private readonly batchMetrics = batchMetrics() ?? null;
  /** The log lines peers cause, rate-limited. */
  private readonly peerLog = new PeerLog((level, message) => this.handler.log(level, message));

  constructor(
    private readonly settings: RemoteServerSettings,
    private readonly handler: InboundHandler,
  ) {
    this.server = new Server({
      ...KEEPALIVE_OPTIONS,
      'grpc.max_send_message_length': settings.maxMessageSize,
      'grpc.max_receive_message_length': settings.maxMessageSize,
    });
    this.server.addService(remotingService, { connect: (stream: ServerDuplexStream<Buffer, Buffer>) => this.serve(stream) });
  }

  /** Listen; resolves to the bound port. */
  start(): Promise<number> {
    return new Promise((resolve, reject) => {
      // NOTE: with TLS a peer without a certificate of the cluster CA, or speaking plaintext, fails
      // the TLS handshake: it never reaches serve(), and learns nothing (no cluster name, no reason).
      const credentials = this.settings.credentials ?? ServerCredentials.createInsecure();
      this.server.bindAsync(`${this.settings.host}:${this.settings.port}`, credentials, (error, port) => (error ? reject(error) : resolve(port)));
    });
  }

  /**
   * Tell every accepted caller what this member is now (a new incarnation): another accepted
   * HandshakeAck on each open stream. Callers that predate it ignore the frame.
   */
  announce(): void {
    for (const [stream, caller] of this.callers) stream.write(encodeFrame({ handshakeAck: this.accepted(caller.protocol) }));
  }

  /**
   * Tell every caller that this member is leaving (no new grains here) — and every caller
   * that connects from now on.
   */
  leaving(): void {
    if (this.phase !== 'active') return;
    this.phase = 'leaving';
    this.announce();
  }

  /**
   * Tell every caller that this member has drained, and wait (up to `graceMs`) for them to
   * end their streams: what they wrote before they heard it is still answered, so nothing
   * written is lost to the close.
   */
  async close(graceMs = DEFAULT_CLOSE_GRACE_MS): Promise<void> {
    this.phase = 'closing';
    this.announce();
    if (this.streams.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.allEnded = resolve;
      timer = setTimeout(resolve, graceMs);
    });
    clearTimeout(timer);
    this.allEnded = undefined;
  }

  async shutdown(): Promise<void> {
    this.peerLog.close();
    for (const stream of this.streams) stream.end();
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, SHUTDOWN_GRACE_MS);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }

  private serve(stream: ServerDuplexStream<Buffer, Buffer>): void {
    const limits = this.limits;
    // NOTE: `ip:port` of the peer's socket: one per connection (grpc-js getPeer()).
    const connection = stream.getPeer();
    const from = hostOf(connection);
    this.streams.add(stream);
    this.connections.set(connection, (this.connections.get(connection) ?? 0) + 1);
    let caller: Caller | undefined;
    let open = true;
    const writer = new BatchWriter(stream, this.settings.maxQueued, undefined, limits.maxQueuedBytes, this.batchMetrics);
    const who = () => (caller === undefined ? `an unidentified peer at ${from}` : `member ${quote(caller.member.memberId)} at ${from}`);
    // NOTE: what a peer makes this member log is rate-limited per peer (its address, and the member it claims).
    const log = (level: 'warn' | 'log', message: string) =>
      this.peerLog.log(caller === undefined ? from : `${from} ${caller.member.memberId}`, who(), level, message);
    const timer = setTimeout(() => {
      if (caller === undefined) shut(`no handshake within ${HANDSHAKE_TIMEOUT_MS / 1_000} s`);
    }, HANDSHAKE_TIMEOUT_MS);
    timer.unref();
    const close = () => {
      if (!open) return;
      open = false;
      clearTimeout(timer);
      writer.close();
      pending.length = 0;
      this.streams.delete(stream);
      this.shutters.delete(stream);
      if (this.callers.delete(stream)) count(this.memberStreams, caller!.member.memberId, -1);
      count(this.connections, connection, -1);
      if (this.streams.size === 0) this.allEnded?.();
    };
    /** Close the stream now, for `reason` (logged); a peer not yet accepted is told only that it was refused. */
    const shut = (reason: string) => {
      if (!open) return;
      log('warn', `Remote: closed the stream of ${who()}: ${reason}`);
      if (caller === undefined) stream.write(encodeFrame({ handshakeAck: REFUSED }));
      close();
      stream.end();
    };
    this.shutters.set(stream, shut);
    let malformed = 0;
    let gossipWindow = 0;
    let gossipInWindow = 0;
    const dropMalformed = (detail: string) => {
      malformed++;
      log('warn', `Remote: dropped a malformed frame from ${who()}: ${detail}`);
      if (malformed >= limits.maxMalformedFramesPerStream) shut(`${malformed} malformed frames (remote.inbound.maxMalformedFramesPerStream)`);
    };
    // NOTE: a caller that ends its side (it heard this member is closing, or it is stopping)
    // still gets the answers to what it wrote: the stream ends once they are written.
    let unanswered = 0;
    let callerEnded = false;
    const finish = () => {
      void writer.flushed().then(() => {
        close();
        stream.end();
      });
    };
    // NOTE: reading pauses while a batch is served in slices (so one batch cannot hold the
    // event loop), and while the caller does not read its responses (so it cannot queue work
    // whose answers pile up here).
    let slicing = false;
    let congested = false;
    let paused = false;
    const flow = () => {
      const hold = open && (slicing || congested);
      if (hold === paused) return;
      paused = hold;
      if (hold) stream.pause();
      else stream.resume();
    };
    const queue = (response: OutboundResponse) => {
      if (!open) return;
      if (!writer.enqueueResponse(response)) {
        // NOTE: no room (the caller does not read its answers fast enough): it still hears, at
        // once and in a few bytes, that the call ran and its result was dropped, rather than
        // waiting for its deadline.
        writer.enqueueResponse(
          {
            id: response.id,
            // NOTE: a call that ran is outcome-unknown to its caller now; one that never ran keeps its status.
            status: RAN.has(response.status) ? Status.OUTCOME_UNKNOWN : response.status,
            error: {
              name: RAN.has(response.status) ? 'OutcomeUnknownError' : 'GrainError',
              message: 'the answer was dropped: the caller did not read its answers fast enough (remote.maxQueuedBytesPerPeer)',
              code: '',
              origin: '',
              cycle: [],
            },
          },
          true,
        );
      }
      if (congested || !writer.congested) return;
      congested = true;
      flow();
      // NOTE: a caller that never reads its answers (yet answers keepalive pings) would pin
      // them, and the stream, for good: it gets a while, then its stream is closed.
      const stuck = setTimeout(() => shut(`its caller read none of its answers for ${CONGESTION_TIMEOUT_MS / 1_000} s`), CONGESTION_TIMEOUT_MS);
      stuck.unref();
      void writer.flushed().then(() => {
        clearTimeout(stuck);
        congested = false;
        flow();
      });
    };
    stream.on('error', close);
    stream.on('close', close);
    stream.on('end', () => {
      callerEnded = true;
      if (unanswered === 0 && pending.length === 0) finish();
    });
    // NOTE: one function per stream answers every request of it: a response for a caller whose
    // stream is gone, or beyond the queue bound, is dropped, and the caller accounts for it
    // (outcome unknown, or its deadline).
    const respond = (response: OutboundResponse) => {
      queue(response);
      if (--unanswered > 0 || pending.length > 0) return;
      // NOTE: the only answer this stream owes, and nothing more to read: nothing owed now can
      // join its batch, so it goes out now rather than at the writer's flush in the check phase, whose
      // write Node's http2 sends on the next loop iteration (Http2Session::MaybeScheduleWrite).
      // Measured 3–5 µs off the p50 of one caller's remote calls; at 1,000 callers it hardly
      // ever applies (answers are owed all the time).
      if (writer.queued === 1) writer.flush();
      if (callerEnded) finish();
    };
    /**
     * Frames received and not yet handled in full, in order: raw (not decoded yet) or a batch
     * being served; `next` is the first request of the batch at the head not served yet.
     */
    const pending: Array<Buffer | Batch> = [];
    let next = 0;
    let badRequests = 0;
    let firstProblem: string | undefined;
    const admit = (wire: WireRequest, strings: readonly string[]) => {
      const problem = requestProblem(wire, strings, limits);
      if (problem !== undefined) {
        badRequests++;
        firstProblem ??= problem;
        queue({ id: wire.id, status: Status.BAD_REQUEST, error: { name: 'InvalidGrainCallError', message: problem, code: '', origin: '', cycle: [] } });
        return;
      }
      // NOTE: a trace context longer than W3C allows is dropped, never refused (inbound-limits.ts).
      const traceparent = inboundTraceparent(wire);
      const request = new AdmittedRequest(
        wire.id,
        strings[wire.kind]!,
        strings[wire.identity]!,
        strings[wire.method]!,
        wire.args,
        wire.timeoutMs,
        wire.chain.length === 0
          ? NO_LINKS
          : wire.chain.map((link) => ({ activationId: strings[link.activationId]!, label: strings[link.label]!, interleaved: link.interleaved })),
        strings[wire.targetIncarnation]!,
        traceparent,
        traceparent === '' ? '' : inboundTracestate(wire),
      );
      unanswered++;
      this.handler.request(request, respond, caller!.member);
    };
    /** A frame's bytes: checked, decoded, then the handshake answered or the batch queued. */
    const read = (chunk: Buffer) => {
      // NOTE: the shape of the bytes first (cheap, builds nothing): protobufjs takes about a
      // second to build a frame of four million empty requests.
      const problem = inspectFrame(chunk, limits.maxRequestsPerBatch);
      if (problem !== undefined) return dropMalformed(problem);
      let frame: Frame;
      try {
        frame = decodeFrame(chunk);
      } catch (error) {
        return dropMalformed((error as Error).message);
      }
      if (caller === undefined) {
        if (!('handshake' in frame)) return shut('the first frame was not a handshake');
        const hello = frame.handshake;
        const answer = this.answerHandshake(hello);
        if (typeof answer === 'string') {
          // NOTE: the peer hears "refused" and nothing else (not this cluster's name, this
          // member, its protocol or codec); the reason, and what it claimed, are logged here.
          const claimed = hello.member.address === '' ? 'client only' : quote(hello.member.address);
          log('warn', `Remote: refused member ${quote(hello.member.memberId)} (${claimed}, from ${from}): ${answer}`);
          stream.write(encodeFrame({ handshakeAck: REFUSED }));
          close();
          stream.end();
          return;
        }
        caller = { member: hello.member, protocol: answer };
        stream.write(encodeFrame({ handshakeAck: this.accepted(answer) }));
        if (open) {
          this.makeRoomFor(caller.member.memberId);
          this.callers.set(stream, caller);
          count(this.memberStreams, caller.member.memberId, 1);
        }
        clearTimeout(timer);
        this.handler.peer(caller.member, caller.protocol);
        return;
      }
      if ('gossip' in frame) {
        // NOTE: only on a stream that negotiated gossip; the reply goes out now or not at all
        // (a congested caller gets it next time).
        if (caller.protocol < GOSSIP_PROTOCOL || this.handler.gossip === undefined) return;
        // NOTE: a member pushes about once per round (300 ms) to each peer; more is dropped
        // unread, so a peer cannot make this member merge gossip without pause.
        const at = performance.now();
        if (at - gossipWindow >= GOSSIP_WINDOW_MS) {
          gossipWindow = at;
          gossipInWindow = 0;
        }
        if (++gossipInWindow > MAX_GOSSIP_PER_WINDOW) return;
        const reply = writer.writable ? (bytes: Uint8Array) => void writer.writeNow(encodeFrame({ gossip: bytes })) : undefined;
        if (!this.handler.gossip(frame.gossip, reply)) dropMalformed('undecodable gossip');
        return;
      }
      if (!('batch' in frame) || frame.batch.requests.length === 0) return;
      pending.push(frame.batch);
    };
    /** Handle what is pending while the server's budget for this turn lasts; the rest on a later turn. */
    const pump = () => {
      while (open && pending.length > 0) {
        // NOTE: one unit (a frame decoded, or a request admitted) per draw: the clock is read
        // after each, since one request may decode up to the codec's limits (~20-40 ms for a
        // Set of colliding doubles at maxSetSize), and the count bounds what runs in the
        // microtasks after (turns start there).
        if (!this.budget.take()) {
          slicing = true;
          flow();
          setImmediate(resume);
          return;
        }
        const head = pending[0]!;
        if (Buffer.isBuffer(head)) {
          pending.shift();
          read(head);
          continue;
        }
        if (next < head.requests.length) {
          admit(head.requests[next++]!, head.strings);
          continue;
        }
        pending.shift();
        next = 0;
        if (badRequests > 0) {
          log('warn', `Remote: answered ${badRequests} request${badRequests === 1 ? '' : 's'} of a batch from ${who()} BAD_REQUEST: ${firstProblem}`);
          badRequests = 0;
          firstProblem = undefined;
        }
      }
      slicing = false;
      flow();
      if (open && callerEnded && unanswered === 0 && pending.length === 0) finish();
    };
    /**
     * The next slice of a batch served in slices. NOTE: the answers of the slice before go out
     * first, so the caller works on them while this member serves the rest (without this, the
     * writer's own flush, queued after this, wrote every slice's answers in one frame at the
     * end, and the two members took turns: measured +8–11 % calls/s at 1,000 callers).
     */
    const resume = () => {
      writer.flush();
      pump();
    };
    stream.on('data', (chunk: Buffer) => {
      if (!open) return;
      // NOTE: before its handshake a peer is a stranger: nothing larger than a handshake is even looked at.
      if (caller === undefined && chunk.byteLength > MAX_PRE_HANDSHAKE_FRAME_BYTES) {
        return shut(`a first frame of ${chunk.byteLength} bytes, more than a handshake can be`);
      }
      pending.push(chunk);
      if (!slicing) pump();
    });
    if (this.connections.get(connection)! > limits.maxStreamsPerConnection) {
      shut(`more than ${limits.maxStreamsPerConnection} open streams on one connection (remote.inbound.maxStreamsPerConnection)`);
    }
  }

  /**
   * A stream of `memberId` is being accepted: when it has `maxStreamsPerMember` open already,
   * close its oldest. NOTE: not a refusal — a member whose connections died silently (not
   * noticed yet by keepalive) must get in again, and a refusal would read as lasting to it.
   */
  private makeRoomFor(memberId: string): void {
    if ((this.memberStreams.get(memberId) ?? 0) < this.limits.maxStreamsPerMember) return;
    for (const [stream, caller] of this.callers) {
      if (caller.member.memberId !== memberId) continue;
      this.shutters.get(stream)?.(`a newer stream of the same member replaces it (remote.inbound.maxStreamsPerMember = ${this.limits.maxStreamsPerMember})`);
      return;
    }
  }

  /** The protocol version to accept `handshake` on, or why it is refused (for this member's log only). */
  private answerHandshake(handshake: Handshake): number | string {
    const { member } = handshake;
    const maxName = this.limits.maxIdentityBytes + NAME_ALLOWANCE;
    if (Math.max(handshake.clusterName.length, handshake.codec.length, member.memberId.length, member.incarnation.length, member.address.length) > maxName) {
      return `a cluster name, codec, member id, incarnation or address of more than ${maxName} characters`;
    }
    if (handshake.clusterName !== this.handler.clusterName) {
      return `cluster ${quote(handshake.clusterName)} is not this member's cluster ${quote(this.handler.clusterName)}`;
    }
    const protocol = negotiate({ min: handshake.minProtocol, max: handshake.maxProtocol }, this.handler.protocol);
    if (protocol === undefined) {
      return `no common protocol version: the caller speaks ${handshake.minProtocol}..${handshake.maxProtocol}, this member ${this.handler.protocol.min}..${this.handler.protocol.max}`;
    }
    if (handshake.codec !== this.handler.codecName) {
      return `codec ${quote(handshake.codec)} differs from this member's ${quote(this.handler.codecName)}`;
    }
    // NOTE: incarnations are not checked here: the caller learns this one from the ack, and each
    // request names the incarnation it targets (another one is answered NOT_HERE).
    return protocol;
  }

  private accepted(protocol: number): HandshakeAck {
    return { accepted: true, protocol, member: this.handler.self(), reason: '', leaving: this.phase !== 'active', closing: this.phase === 'closing' };
  }
}

/**
 * What every refused peer is told, whatever the reason: nothing of this member (cluster name,
 * member id, incarnation, address, kinds) nor of why (protocol range, codec). Both sides log
 * their side: the reason here, "refused" there.
 */
const REFUSED: HandshakeAck = {
  accepted: false,
  protocol: 0,
  member: { memberId: '', incarnation: '', address: '', kinds: [] },
  reason: 'refused',
  leaving: false,
  closing: false,
};

/**
 * How long, and how many requests, a batch is served before reading yields to the event loop
 * (the rest is served on the next turn). Admitting a request is quick, but what it starts (an
 * activation, a turn) runs in the microtasks right after: so both bound a slice.
 */
const SLICE_MS = 5;
/**
 * NOTE: with each slice's answers written before the next slice (`resume`), 128 and 192 did
 * best at 1,000 callers (+8 to +11 % calls/s over 256); 64 and 512 less (+5 %, −7 %).
 */
export const SLICE_REQUESTS = 128;

/** Statuses of calls that ran (or may have): their stand-in answer is OUTCOME_UNKNOWN. */
const RAN: ReadonlySet<Status> = new Set([Status.OK, Status.INVOCATION_FAILED, Status.TOO_LARGE, Status.TIMEOUT, Status.OUTCOME_UNKNOWN]);

/** Gossip frames a stream may push per window; the rest are dropped unread (a member pushes about 3 a second to each peer). */
const GOSSIP_WINDOW_MS = 1_000;
const MAX_GOSSIP_PER_WINDOW = 20;

/** The largest frame a peer may send before its handshake is accepted (a handshake is far smaller). */
const MAX_PRE_HANDSHAKE_FRAME_BYTES = 64 * 1024;

/**
 * The inbound work of the whole server in one event-loop turn: every stream draws on it, so
 * many streams together hold the loop no longer than one may (a budget per stream was
 * multiplied by the number of streams: 128 streams stalled a member for a second). A window
 * opens with the first unit of work in a turn and closes at the next check phase (an
 * immediate queued when it opened): a poll phase and a check phase each get one window.
 */
class InboundBudget {
  private open = false;
  private started = 0;
  private spent = 0;
  private readonly reset = () => {
    this.open = false;
  };

  /** One unit of work (a frame to decode, or a request to admit) may go now; false: yield until the next turn. */
  take(): boolean {
    if (!this.open) {
      this.open = true;
      this.started = performance.now();
      this.spent = 0;
      setImmediate(this.reset);
    } else if (this.spent >= SLICE_REQUESTS || performance.now() - this.started >= SLICE_MS) {
      return false;
    }
    this.spent++;
    return true;
  }
}

/** The host part of grpc-js's `getPeer()` (`ip:port`, `[v6]:port`, or a path). */
function hostOf(peer: string): string {
  const colon = peer.lastIndexOf(':');
  return colon > 0 && /^\d+$/.test(peer.slice(colon + 1)) ? peer.slice(0, colon).replace(/^\[|\]$/g, '') : peer;
}

function count(counts: Map<string, number>, key: string, by: number): void {
  const n = (counts.get(key) ?? 0) + by;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}
