import type { Call } from '../actor/call.js';
import type { Pid } from '../actor/pid.js';
import { type Codec, CodecError } from '../remote/codec/codec.js';
import type { EndpointEvents, FailureReason } from '../remote/endpoint.js';
import type { InboundRequest, OutboundRequest, OutboundResponse } from '../remote/envelopes.js';
import type { ProtocolRange } from '../remote/protocol.js';
import type { InboundHandler } from '../remote/remote-server.js';
import type { Remote } from '../remote/remote.js';
import { type MemberInfo, type RemoteErrorInfo, Status, type WireResponse } from '../remote/wire.js';
import {
  CallCycleError,
  ClusterShuttingDownError,
  ClusterUnavailableError,
  GrainActivationError,
  GrainError,
  GrainIdentityRefusedError,
  GrainInvocationError,
  GrainOverloadedError,
  GrainSerializationError,
  GrainTimeoutError,
  InvalidGrainCallError,
  MessageTooLargeError,
  MethodNotCallableError,
  NotHereError,
  OutcomeUnknownError,
  UnknownKindError,
} from './errors.js';
import type { ClusterLogger } from './logger.js';
import type { Member } from './providers/cluster-provider.js';

/** Room left in a frame for the envelope around the arguments. */
const ENVELOPE_ALLOWANCE = 64 * 1024;

/** What the glue needs of the cluster member. */
export interface RemoteHost {
  readonly clusterName: string;
  readonly logger: ClusterLogger;
  readonly incarnation: string;
  self(): Member;
  acceptsCalls(): boolean;
  /** Send a call that provably never ran on to wherever its grain is now. */
  redirect(call: Call): void;
  /** Forget where `call`'s grain was believed to live. */
  forgetPid(call: Call): void;
  /** False while this member's claims are leased and the lease is not valid now. */
  leaseValid(): boolean;
  /** Forget every grain believed to live at `address` (its connection failed). */
  forgetAddress(address: string): void;
  /** A handshake showed who a peer is now. */
  peerSeen(member: Member): void;
  /** Serve an inbound call here (or answer it "not here"). */
  serveInbound(call: Call): void;
  createInboundCall(request: InboundRequest, args: unknown[], resolve: (value: unknown) => void, reject: (error: unknown) => void): Call | GrainError;
}

/**
 * The glue between the runtime and the transport: encodes calls for peers, turns every
 * response status and transport failure into the typed error (or retry) it means, and
 * serves peers' requests through the local request path.
 */
export class ClusterRemote implements EndpointEvents, InboundHandler {
  remote: Remote | undefined;

  constructor(
    private readonly host: RemoteHost,
    readonly codec: Codec,
    readonly protocol: ProtocolRange,
    readonly maxMessageSize: number,
    readonly maxQueuedPerPeer: number,
  ) {}

  get clusterName(): string {
    return this.host.clusterName;
  }

  get codecName(): string {
    return this.codec.name;
  }

  // Caller side ---------------------------------------------------------------------------

  send(call: Call, pid: Pid): void {
    let args: Uint8Array;
    try {
      args = this.codec.encode(call.args);
    } catch (error) {
      call.reject(this.codecFailure(call, error, true));
      return;
    }
    if (args.byteLength > this.maxMessageSize - ENVELOPE_ALLOWANCE) {
      call.reject(new MessageTooLargeError(call.kind, call.identity, call.method, true, `${args.byteLength} bytes of arguments; the limit is ${this.maxMessageSize - ENVELOPE_ALLOWANCE}`));
      return;
    }
    this.remote!.send(pid.address!, { id: 0, call, args, targetIncarnation: pid.incarnation ?? '', address: pid.address!, written: false });
  }

  response(request: OutboundRequest, response: WireResponse): void {
    const call = request.call;
    if (call.settled) return;
    const error = response.error;
    switch (response.status) {
      case Status.OK: {
        let value: unknown;
        try {
          value = response.result.byteLength === 0 ? undefined : this.codec.decode(response.result);
        } catch (failure) {
          call.reject(this.codecFailure(call, failure, false));
          return;
        }
        call.resolve(value);
        return;
      }
      case Status.NOT_HERE:
      case Status.SHUTTING_DOWN:
        this.host.forgetPid(call);
        this.host.redirect(call);
        return;
      case Status.EXPIRED:
        call.reject(new GrainTimeoutError(call.kind, call.identity, call.method, call.timeoutMs, true));
        return;
      case Status.TIMEOUT:
        call.reject(new GrainTimeoutError(call.kind, call.identity, call.method, call.timeoutMs, false));
        return;
      case Status.INVOCATION_FAILED:
        call.reject(new GrainInvocationError(call.kind, call.identity, call.method, error!.name, error!.message, error!.code === '' ? undefined : error!.code, { origin: error!.origin || undefined }));
        return;
      case Status.OVERLOADED:
        call.reject(new GrainOverloadedError(call.kind, call.identity, Number(error!.code) || 0));
        return;
      case Status.CALL_CYCLE:
        call.reject(new CallCycleError(error!.cycle));
        return;
      case Status.UNKNOWN_KIND:
        call.reject(new UnknownKindError(call.kind));
        return;
      case Status.METHOD_NOT_CALLABLE:
        call.reject(new MethodNotCallableError(call.kind, call.method));
        return;
      case Status.ACTIVATION_FAILED:
        call.reject(new GrainActivationError(call.kind, call.identity, error!.message));
        return;
      case Status.BAD_REQUEST:
        call.reject(new InvalidGrainCallError(`Call ${call.kind}/${call.identity}.${call.method}() was refused by the member hosting it: ${error!.message}. It never ran.`));
        return;
      case Status.TOO_LARGE:
        call.reject(new MessageTooLargeError(call.kind, call.identity, call.method, false, error!.message));
        return;
      case Status.UNAVAILABLE:
        // NOTE: the member could not serve it (e.g. cut off from its lookup): next time, resolve again.
        this.host.forgetPid(call);
        call.reject(new ClusterUnavailableError(`Call ${call.kind}/${call.identity}.${call.method}(): ${error!.message}`));
        return;
      case Status.IDENTITY_REFUSED:
        call.reject(new GrainIdentityRefusedError(call.kind, call.identity));
        return;
      case Status.OUTCOME_UNKNOWN:
        if (call.idempotent) {
          this.host.forgetPid(call);
          this.host.redirect(call);
          return;
        }
        call.reject(new OutcomeUnknownError(call.kind, call.identity, call.method, error!.message));
        return;
    }
  }

  failed(request: OutboundRequest, written: boolean, reason: FailureReason, detail: string): void {
    const call = request.call;
    if (call.settled) return;
    if (reason === 'overloaded') {
      call.reject(new GrainOverloadedError(call.kind, call.identity, this.maxQueuedPerPeer, detail));
      return;
    }
    if (reason === 'closed') {
      call.reject(new ClusterShuttingDownError());
      return;
    }
    if (reason === 'refused') {
      // NOTE: a refusal (another cluster, no common protocol, another codec) lasts: fail now.
      call.reject(new ClusterUnavailableError(`Call ${call.kind}/${call.identity}.${call.method}() never ran: the member hosting it refused this member (${detail}).`));
      return;
    }
    // NOTE: every grain cached at that member is in doubt now, not only this call's: the
    // next calls resolve again (with a leased lookup the grains may have moved already).
    this.host.forgetAddress(request.address);
    if (!written || call.idempotent) {
      // NOTE: never written (or safe to repeat): provably not run, so it may go again.
      this.host.redirect(call);
      return;
    }
    call.reject(new OutcomeUnknownError(call.kind, call.identity, call.method, detail));
  }

  expired(request: OutboundRequest): void {
    // NOTE: no answer in time: where the grain lives is in doubt, so the next call resolves again.
    this.host.forgetPid(request.call);
    request.call.reject(new GrainTimeoutError(request.call.kind, request.call.identity, request.call.method, request.call.timeoutMs, !request.written));
  }

  peer(info: MemberInfo): void {
    this.host.peerSeen({ id: info.memberId, incarnation: info.incarnation, address: info.address, kinds: info.kinds });
  }

  log(level: 'warn' | 'log', message: string): void {
    this.host.logger[level](message);
  }

  // Callee side ---------------------------------------------------------------------------

  self(): MemberInfo {
    const self = this.host.self();
    return { memberId: self.id, incarnation: self.incarnation, address: self.address, kinds: [...self.kinds] };
  }

  request(request: InboundRequest, respond: (response: OutboundResponse) => void): void {
    const fail = (status: Status, error: GrainError | Partial<RemoteErrorInfo>) => respond({ id: request.id, status, error: toErrorInfo(error) });
    if (!this.host.acceptsCalls()) return fail(Status.SHUTTING_DOWN, new ClusterShuttingDownError());
    if (request.targetIncarnation !== '' && request.targetIncarnation !== this.host.incarnation) {
      return fail(Status.NOT_HERE, new NotHereError(request.kind, request.identity));
    }
    if (!this.host.leaseValid()) {
      // NOTE: a member whose lease ran out serves and claims nothing: the caller resolves
      // again, and finds the grain wherever it is claimed next.
      return fail(Status.NOT_HERE, new NotHereError(request.kind, request.identity));
    }
    if (request.timeoutMs <= 0) return fail(Status.EXPIRED, { name: 'GrainTimeoutError', message: 'expired before dispatch' });
    // NOTE: what a local caller cannot send (client.get('') throws) a peer cannot either.
    if (request.identity === '') return fail(Status.BAD_REQUEST, { name: 'InvalidGrainCallError', message: 'an empty grain identity' });
    let args: unknown;
    try {
      args = this.codec.decode(request.args);
    } catch (error) {
      return fail(Status.BAD_REQUEST, { name: 'CodecError', message: `undecodable arguments: ${(error as Error).message}` });
    }
    if (!Array.isArray(args)) return fail(Status.BAD_REQUEST, { name: 'CodecError', message: 'the arguments are not a list' });
    const call = this.host.createInboundCall(
      request,
      args,
      (value) => respond(this.okResponse(request, value)),
      (error) => respond(errorResponse(request.id, error)),
    );
    if (call instanceof GrainError) return respond(errorResponse(request.id, call));
    this.host.serveInbound(call);
  }

  private okResponse(request: InboundRequest, value: unknown): OutboundResponse {
    let result: Uint8Array;
    try {
      result = value === undefined ? EMPTY : this.codec.encode(value);
    } catch (error) {
      if (error instanceof CodecError && error.code === 'CODEC_TOO_LARGE') {
        return { id: request.id, status: Status.TOO_LARGE, error: toErrorInfo({ name: 'MessageTooLargeError', message: error.message }) };
      }
      return { id: request.id, status: Status.INVOCATION_FAILED, error: toErrorInfo({ name: 'GrainSerializationError', message: `the result cannot be sent between members: ${(error as Error).message}`, code: 'GRAIN_SERIALIZATION', origin: `${request.kind}/${request.identity}.${request.method}` }) };
    }
    if (result.byteLength > this.maxMessageSize - ENVELOPE_ALLOWANCE) {
      return { id: request.id, status: Status.TOO_LARGE, error: toErrorInfo({ name: 'MessageTooLargeError', message: `${result.byteLength} bytes of result; the limit is ${this.maxMessageSize - ENVELOPE_ALLOWANCE}` }) };
    }
    return { id: request.id, status: Status.OK, result };
  }

  private codecFailure(call: Call, error: unknown, neverRan: boolean): GrainError {
    if (error instanceof CodecError && error.code === 'CODEC_TOO_LARGE') return new MessageTooLargeError(call.kind, call.identity, call.method, neverRan, error.message);
    return new GrainSerializationError(call.kind, call.identity, call.method, neverRan, error instanceof Error ? error.message : String(error));
  }
}

const EMPTY = new Uint8Array(0);

function toErrorInfo(error: GrainError | Partial<RemoteErrorInfo>): RemoteErrorInfo {
  if (error instanceof GrainError) return { name: error.name, message: error.message, code: error.code, origin: '', cycle: error instanceof CallCycleError ? [...error.cycle] : [] };
  return { name: error.name ?? 'Error', message: error.message ?? '', code: error.code ?? '', origin: error.origin ?? '', cycle: error.cycle ?? [] };
}

/** What a local outcome becomes on the wire. */
function errorResponse(id: number, error: unknown): OutboundResponse {
  if (error instanceof GrainInvocationError) {
    return { id, status: Status.INVOCATION_FAILED, error: { name: error.remoteName, message: error.remoteMessage, code: error.remoteCode ?? '', origin: error.origin, cycle: [] } };
  }
  if (error instanceof NotHereError) return { id, status: Status.NOT_HERE, error: toErrorInfo(error) };
  if (error instanceof GrainTimeoutError) return { id, status: error.neverRan ? Status.EXPIRED : Status.TIMEOUT, error: toErrorInfo(error) };
  if (error instanceof GrainOverloadedError) return { id, status: Status.OVERLOADED, error: { ...toErrorInfo(error), code: String(error.maxQueued) } };
  if (error instanceof CallCycleError) return { id, status: Status.CALL_CYCLE, error: toErrorInfo(error) };
  if (error instanceof UnknownKindError) return { id, status: Status.NOT_HERE, error: toErrorInfo(error) };
  if (error instanceof MethodNotCallableError) return { id, status: Status.METHOD_NOT_CALLABLE, error: toErrorInfo(error) };
  if (error instanceof GrainActivationError) return { id, status: Status.ACTIVATION_FAILED, error: { ...toErrorInfo(error), message: error.reason } };
  if (error instanceof ClusterShuttingDownError) return { id, status: Status.SHUTTING_DOWN, error: toErrorInfo(error) };
  if (error instanceof ClusterUnavailableError) return { id, status: Status.UNAVAILABLE, error: toErrorInfo(error) };
  if (error instanceof GrainIdentityRefusedError) return { id, status: Status.IDENTITY_REFUSED, error: toErrorInfo(error) };
  if (error instanceof OutcomeUnknownError) return { id, status: Status.OUTCOME_UNKNOWN, error: { ...toErrorInfo(error), message: error.detail } };
  if (error instanceof GrainError) return { id, status: Status.INVOCATION_FAILED, error: toErrorInfo(error) };
  const e = error instanceof Error ? error : new Error(String(error));
  return { id, status: Status.INVOCATION_FAILED, error: { name: e.name, message: e.message, code: '', origin: '', cycle: [] } };
}

