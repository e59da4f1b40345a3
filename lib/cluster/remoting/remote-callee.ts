import type { Codec } from '../../remote/codec/codec.js';
import { type InboundRequest, type OutboundResponse, ResultResponse } from '../../remote/envelopes.js';
import type { ProtocolRange } from '../../remote/protocol.js';
import type { InboundHandler } from '../../remote/remote-server.js';
import { type MemberInfo, Status } from '../../remote/wire.js';
import { ClusterShuttingDownError, type GrainError, NotHereError } from '../errors.js';
import type { InboundReplies } from '../request-router.js';
import type { Fencing } from '../fencing.js';
import { identityProblem } from '../identity-rule.js';
import type { LocalMember } from '../local-member.js';
import type { ClusterLogger } from '../logger.js';
import { decodeArguments, encodeResult } from './crossing.js';
import type { GossipReceiver } from './remote-caller.js';
import { refusal, responseForError, toErrorInfo } from './status-errors.js';

/** Where a response goes: the caller's stream. */
type Respond = (response: OutboundResponse) => void;

/** What the callee side needs from the request path. */
export interface CalleeRouting {
  /** True while the member takes calls. */
  readonly running: boolean;
  /** Why a peer's request is not served here, on its kind and method alone; checked before its arguments are decoded. */
  inboundRouteProblem(request: InboundRequest): GrainError | undefined;
  /** Serve a peer's request here, its outcome to `replies` with `respond`; returns the error instead when this member does not serve it. */
  serveInbound(request: InboundRequest, args: unknown[], replies: InboundReplies<InboundRequest, Respond>, respond: Respond): GrainError | undefined;
}

/** What the callee side is told and given. */
export interface RemoteCalleeDeps {
  readonly member: LocalMember;
  readonly codec: Codec;
  readonly protocol: ProtocolRange;
  readonly maxMessageSize: number;
  /** The longest identity a peer may send, in UTF-8 bytes (identity-rule.ts). */
  readonly maxIdentityBytes: number;
  readonly fencing: Fencing;
  readonly routing: CalleeRouting;
  readonly logger: ClusterLogger;
  /** Where gossip pushed by callers goes; absent when gossip is off. */
  readonly gossip?: GossipReceiver;
}

/**
 * The callee side of the remote seam: admits a peer's request (this member running, the
 * incarnation the caller resolved, a valid lease, time left, a valid identity, a kind and
 * method served here, well-formed arguments), makes one call into the request path, and
 * encodes the outcome as the response. The remote server has checked the request's shape
 * before (inbound-limits.ts: string lengths, chain, timeout).
 */
export class RemoteCallee implements InboundHandler, InboundReplies<InboundRequest, Respond> {
  readonly clusterName: string;
  readonly codecName: string;
  readonly protocol: ProtocolRange;

  constructor(private readonly deps: RemoteCalleeDeps) {
    this.clusterName = deps.member.clusterName;
    this.codecName = deps.codec.name;
    this.protocol = deps.protocol;
  }

  self(): MemberInfo {
    const self = this.deps.member.self();
    return { memberId: self.id, incarnation: self.incarnation, address: self.address, kinds: [...self.kinds] };
  }

  request(request: InboundRequest, respond: Respond): void {
    const { routing, member, fencing, codec } = this.deps;
    if (!routing.running) return respond(refusal(request.id, Status.SHUTTING_DOWN, new ClusterShuttingDownError()));
    if (request.targetIncarnation !== '' && request.targetIncarnation !== member.incarnation) {
      return respond(refusal(request.id, Status.NOT_HERE, new NotHereError(request.kind, request.identity)));
    }
    if (!fencing.leaseValid()) {
      // NOTE: a member whose lease ran out serves and claims nothing: the caller resolves
      // again, and finds the grain wherever it is claimed next.
      return respond(refusal(request.id, Status.NOT_HERE, new NotHereError(request.kind, request.identity)));
    }
    if (request.timeoutMs <= 0) return respond(refusal(request.id, Status.EXPIRED, { name: 'GrainTimeoutError', message: 'expired before dispatch' }));
    // NOTE: what a local caller cannot send (client.get('') throws) a peer cannot either.
    const problem = identityProblem(request.identity, this.deps.maxIdentityBytes);
    if (problem !== undefined) return respond(refusal(request.id, Status.BAD_REQUEST, { name: 'InvalidGrainCallError', message: problem }));
    // NOTE: a kind not hosted here, or a method not callable, costs no decoding of arguments.
    const unrouted = routing.inboundRouteProblem(request);
    if (unrouted !== undefined) return respond(responseForError(request.id, unrouted));
    const args = decodeArguments(codec, request.args);
    if (!Array.isArray(args)) return respond(refusal(request.id, args.status, args.error));
    const refused = routing.serveInbound(request, args, this, respond);
    if (refused !== undefined) respond(responseForError(request.id, refused));
  }

  /** A request's call settled with `value` (the request path calls this, once). */
  resolved(request: InboundRequest, value: unknown, respond: Respond): void {
    respond(this.okResponse(request, value));
  }

  /** A request's call failed (the request path calls this, once). */
  rejected(request: InboundRequest, error: unknown, respond: Respond): void {
    respond(responseForError(request.id, error));
  }

  /**
   * A caller's handshake was accepted. What it says of itself changes nothing here: membership
   * comes from the provider, and confirmations only from connections this member dialled.
   */
  peer(): void {}

  gossip(bytes: Uint8Array, reply: ((bytes: Uint8Array) => void) | undefined): boolean {
    return this.deps.gossip?.receivePush(bytes, reply) ?? true;
  }

  log(level: 'warn' | 'log', message: string): void {
    this.deps.logger[level](message);
  }

  private okResponse(request: InboundRequest, value: unknown): OutboundResponse {
    const result = encodeResult(this.deps.codec, this.deps.maxMessageSize, value, request);
    if (result instanceof Uint8Array) return new ResultResponse(request.id, Status.OK, result);
    return { id: request.id, status: result.status, error: toErrorInfo(result.error) };
  }
}
