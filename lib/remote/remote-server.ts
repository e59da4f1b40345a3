import { Server, ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';
import { BatchWriter } from './batch-writer.js';
import type { InboundRequest, OutboundResponse } from './envelopes.js';
import { negotiate, type ProtocolRange } from './protocol.js';
import { KEEPALIVE_OPTIONS, remotingService } from './service-definition.js';
import { decodeFrame, encodeFrame, type Handshake, type HandshakeAck, type MemberInfo } from './wire.js';

/** How long a new stream may take to send its handshake before it is closed. */
const HANDSHAKE_TIMEOUT_MS = 5_000;
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
  log(level: 'warn' | 'log', message: string): void;
}

export interface RemoteServerSettings {
  readonly host: string;
  readonly port: number;
  readonly maxMessageSize: number;
  readonly maxQueued: number;
}

/**
 * The member's gRPC server: accepts one stream per calling member, handshakes it (refusing
 * strangers with a reason), then serves its requests and batches the responses back.
 * A malformed frame is logged and dropped; the stream and the member carry on.
 */
export class RemoteServer {
  private readonly server: Server;
  private readonly streams = new Set<ServerDuplexStream<Buffer, Buffer>>();
  /** The accepted callers of open streams. */
  private readonly callers = new Map<ServerDuplexStream<Buffer, Buffer>, Caller>();
  private phase: LeavePhase = 'active';
  /** Resolved when the last open stream ends (while closing). */
  private allEnded: (() => void) | undefined;

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
      this.server.bindAsync(`${this.settings.host}:${this.settings.port}`, ServerCredentials.createInsecure(), (error, port) =>
        error ? reject(error) : resolve(port),
      );
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
    this.streams.add(stream);
    let caller: Caller | undefined;
    let open = true;
    const writer = new BatchWriter(stream, this.settings.maxQueued);
    const timer = setTimeout(() => {
      if (caller === undefined) this.refuse(stream, `no handshake within ${HANDSHAKE_TIMEOUT_MS / 1_000} s`);
    }, HANDSHAKE_TIMEOUT_MS);
    timer.unref();
    const close = () => {
      if (!open) return;
      open = false;
      clearTimeout(timer);
      writer.close();
      this.streams.delete(stream);
      this.callers.delete(stream);
      if (this.streams.size === 0) this.allEnded?.();
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
    stream.on('error', close);
    stream.on('close', close);
    stream.on('end', () => {
      callerEnded = true;
      if (unanswered === 0) finish();
    });
    // NOTE: one function per stream answers every request of it: a response for a caller whose
    // stream is gone, or beyond the queue bound, is dropped, and the caller accounts for it
    // (outcome unknown, or its deadline).
    const respond = (response: OutboundResponse) => {
      if (open) writer.enqueueResponse(response);
      if (--unanswered === 0 && callerEnded) finish();
    };
    stream.on('data', (chunk: Buffer) => {
      let frame;
      try {
        frame = decodeFrame(chunk);
      } catch (error) {
        this.handler.log('warn', `Remote: dropped a malformed frame from ${caller?.member.memberId ?? 'an unidentified peer'}: ${(error as Error).message}`);
        return;
      }
      if (caller === undefined) {
        if (!('handshake' in frame)) {
          this.refuse(stream, 'the first frame was not a handshake');
          return;
        }
        const ack = this.answerHandshake(frame.handshake);
        stream.write(encodeFrame({ handshakeAck: ack }));
        if (!ack.accepted) {
          this.handler.log(
            'warn',
            `Remote: refused member ${frame.handshake.member.memberId} (${frame.handshake.member.address || 'client only'}): ${ack.reason}`,
          );
          stream.end();
          return;
        }
        caller = { member: frame.handshake.member, protocol: ack.protocol };
        if (open) this.callers.set(stream, caller);
        clearTimeout(timer);
        this.handler.peer(caller.member, caller.protocol);
        return;
      }
      if (!('batch' in frame)) return;
      const { strings, requests } = frame.batch;
      for (const wire of requests) {
        const request: InboundRequest = {
          id: wire.id,
          kind: strings[wire.kind]!,
          identity: strings[wire.identity]!,
          method: strings[wire.method]!,
          args: wire.args,
          timeoutMs: wire.timeoutMs,
          chain:
            wire.chain.length === 0
              ? NO_LINKS
              : wire.chain.map((link) => ({ activationId: strings[link.activationId]!, label: strings[link.label]!, interleaved: link.interleaved })),
          targetIncarnation: strings[wire.targetIncarnation]!,
        };
        unanswered++;
        this.handler.request(request, respond, caller.member);
      }
    });
  }

  private answerHandshake(handshake: Handshake): HandshakeAck {
    const self = this.handler.self();
    const refuse = (reason: string): HandshakeAck => ({ accepted: false, protocol: 0, member: self, reason, leaving: false, closing: false });
    if (handshake.clusterName !== this.handler.clusterName) {
      return refuse(`cluster "${handshake.clusterName}" is not this member's cluster "${this.handler.clusterName}"`);
    }
    const protocol = negotiate({ min: handshake.minProtocol, max: handshake.maxProtocol }, this.handler.protocol);
    if (protocol === undefined) {
      return refuse(
        `no common protocol version: the caller speaks ${handshake.minProtocol}..${handshake.maxProtocol}, this member ${this.handler.protocol.min}..${this.handler.protocol.max}`,
      );
    }
    if (handshake.codec !== this.handler.codecName) {
      return refuse(`codec "${handshake.codec}" differs from this member's "${this.handler.codecName}"`);
    }
    // NOTE: incarnations are not checked here: the caller learns this one from the ack, and each
    // request names the incarnation it targets (another one is answered NOT_HERE).
    return this.accepted(protocol);
  }

  private accepted(protocol: number): HandshakeAck {
    return { accepted: true, protocol, member: this.handler.self(), reason: '', leaving: this.phase !== 'active', closing: this.phase === 'closing' };
  }

  private refuse(stream: ServerDuplexStream<Buffer, Buffer>, reason: string): void {
    this.handler.log('warn', `Remote: closed a stream: ${reason}`);
    stream.write(encodeFrame({ handshakeAck: { accepted: false, protocol: 0, member: this.handler.self(), reason, leaving: false, closing: false } }));
    stream.end();
  }
}
