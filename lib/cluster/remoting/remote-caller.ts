import type { Call } from '../../actor/call.js';
import type { Pid } from '../../actor/pid.js';
import { CallObservation } from '../../observability/call-telemetry.js';
import { traceparentOf, tracestateOf } from '../../observability/trace-context.js';
import type { Codec } from '../../remote/codec/codec.js';
import type { EndpointEvents, FailureReason } from '../../remote/endpoint.js';
import { type OutboundRequest, PendingRequest } from '../../remote/envelopes.js';
import type { Remote } from '../../remote/remote.js';
import { escapeControls, PeerLog, quote } from '../../remote/peer-log.js';
import type { LeavePhase } from '../../remote/remote-server.js';
import { type MemberInfo, Status, type WireResponse } from '../../remote/wire.js';
import { ClusterShuttingDownError, ClusterUnavailableError, GrainOverloadedError, GrainTimeoutError, OutcomeUnknownError } from '../errors.js';
import type { ClusterLogger } from '../logger.js';
import type { CallSender } from '../request-router.js';
import { decodeResult, encodeArguments } from './crossing.js';
import { outcomeOfStatus } from './status-errors.js';

/** What the caller side needs from the request path. */
export interface CallerRouting {
  /** Send a call that provably never ran on to wherever its grain is now. */
  redirect(call: Call): void;
  /** Forget where `call`'s grain was believed to live. */
  forgetPid(call: Call): void;
  /** Forget every grain believed to live at `address` (its connection failed). */
  forgetAddress(address: string): void;
}

/** What the caller side is told and given. */
export interface RemoteCallerDeps {
  readonly codec: Codec;
  readonly maxMessageSize: number;
  readonly maxQueuedPerPeer: number;
  readonly routing: CallerRouting;
  readonly logger: ClusterLogger;
  /** A handshake (or an announcement) on a connection this member dialled to `address` showed who is there now. */
  peerSeen(info: MemberInfo, address: string, phase: LeavePhase): void;
  /** Where gossip from peers goes (gossip/gossiper.ts); absent when gossip is off. */
  readonly gossip?: GossipReceiver;
}

/** The gossip engine, as the remote seam hands it what arrives. */
export interface GossipReceiver {
  /** False: the bytes were not gossip. */
  receivePush(bytes: Uint8Array, reply: ((bytes: Uint8Array) => void) | undefined): boolean;
  receiveReply(address: string, bytes: Uint8Array): void;
  connectionChanged(address: string, up: boolean, incarnation?: string): void;
}

/**
 * The caller side of the remote seam: encodes calls for peers, and turns every response
 * status and transport failure into the result, typed error or retry it means.
 */
export class RemoteCaller implements CallSender, EndpointEvents {
  /** Set when the member starts its remote. */
  remote: Remote | undefined;
  /** The endpoints' log lines, rate-limited per peer address. */
  private readonly peerLog = new PeerLog((level, message) => this.deps.logger[level](message));

  constructor(private readonly deps: RemoteCallerDeps) {}

  send(call: Call, pid: Pid): void {
    const args = encodeArguments(call, this.deps.codec, this.deps.maxMessageSize);
    if (!(args instanceof Uint8Array)) {
      call.reject(args);
      return;
    }
    const address = pid.address!;
    // NOTE: a traced call carries its CLIENT span's context, so the callee's SERVER span is its child.
    const observation = call.observer;
    const traced = observation !== undefined && observation instanceof CallObservation ? observation.sent(address) : undefined;
    this.remote!.send(
      address,
      new PendingRequest(
        call,
        args,
        pid.incarnation ?? '',
        address,
        traced === undefined ? '' : traceparentOf(traced),
        traced === undefined ? '' : tracestateOf(traced),
      ),
    );
  }

  response(request: OutboundRequest, response: WireResponse): void {
    const call = request.call;
    if (call.settled) return;
    if (response.status === Status.OK) {
      const result = decodeResult(call, this.deps.codec, response.result);
      if ('value' in result) call.resolve(result.value);
      else call.reject(result);
      return;
    }
    const outcome = outcomeOfStatus(response.status, response.error!, call);
    if (outcome.forgetPid) this.deps.routing.forgetPid(call);
    if (outcome.sendOn) this.deps.routing.redirect(call);
    else call.reject(outcome.error);
  }

  failed(request: OutboundRequest, written: boolean, reason: FailureReason, detail: string): void {
    const call = request.call;
    if (call.settled) return;
    if (reason === 'overloaded') {
      call.reject(new GrainOverloadedError(call.kind, call.identity, this.deps.maxQueuedPerPeer, detail));
      return;
    }
    if (reason === 'closed') {
      // NOTE: this member stopped: a call already written may have run there.
      call.reject(written ? new OutcomeUnknownError(call.kind, call.identity, call.method, detail) : new ClusterShuttingDownError());
      return;
    }
    if (reason === 'refused') {
      // NOTE: a refusal (another cluster, no common protocol, another codec) lasts: fail now.
      // The refusing member says nothing more to a peer it refuses; its own log says why.
      call.reject(
        new ClusterUnavailableError(
          `Call ${call.kind}/${call.identity}.${call.method}() never ran: the member hosting it refused this member (it answered ${quote(detail)}; its log says why).`,
        ),
      );
      return;
    }
    // NOTE: every grain cached at that member is in doubt now, not only this call's: the
    // next calls resolve again (with a leased lookup the grains may have moved already).
    this.deps.routing.forgetAddress(request.address);
    if (!written || call.idempotent) {
      // NOTE: never written (or safe to repeat): provably not run, so it may go again.
      this.deps.routing.redirect(call);
      return;
    }
    call.reject(new OutcomeUnknownError(call.kind, call.identity, call.method, detail));
  }

  expired(request: OutboundRequest): void {
    // NOTE: no answer in time: where the grain lives is in doubt, so the next call resolves again.
    const call = request.call;
    this.deps.routing.forgetPid(call);
    call.reject(new GrainTimeoutError(call.kind, call.identity, call.method, call.timeoutMs, !request.written));
  }

  peer(info: MemberInfo, _protocol: number, address: string, phase: LeavePhase): void {
    this.deps.peerSeen(info, address, phase);
  }

  gossip(address: string, bytes: Uint8Array): void {
    this.deps.gossip?.receiveReply(address, bytes);
  }

  connection(address: string, up: boolean, peer?: MemberInfo): void {
    this.deps.gossip?.connectionChanged(address, up, peer?.incarnation);
  }

  log(level: 'warn' | 'log', message: string): void {
    // NOTE: an endpoint's line may hold what the peer sent (a refusal's reason): escaped, and
    // rate-limited per peer (each line starts "Remote <address>").
    const address = /^Remote (\S+?):?(?:\s|$)/.exec(message)?.[1] ?? 'Remote';
    this.peerLog.log(address, `the member at ${address}`, level, escapeControls(message));
  }
}
