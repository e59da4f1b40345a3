/**
 * The two translation tables of the remote seam, side by side so they stay each other's
 * inverse: what a response status means to the caller (`outcomeOfStatus`), and which status
 * a local outcome becomes on the wire (`responseForError`).
 */
import type { Call } from '../../actor/call.js';
import type { OutboundResponse } from '../../remote/envelopes.js';
import { type RemoteErrorInfo, Status } from '../../remote/wire.js';
import {
  CallCycleError,
  ClusterShuttingDownError,
  ClusterUnavailableError,
  GrainActivationError,
  GrainError,
  GrainIdentityRefusedError,
  GrainInvocationError,
  GrainOverloadedError,
  GrainTimeoutError,
  InvalidGrainCallError,
  MessageTooLargeError,
  MethodNotCallableError,
  NotHereError,
  OutcomeUnknownError,
  UnknownKindError,
  httpOutcomeFromWire,
} from '../errors.js';

/** What a caller does with a response other than OK. */
export interface StatusOutcome {
  /** Forget where the grain was believed to live: the next call resolves again. */
  readonly forgetPid: boolean;
  /** Send the call on (it provably never ran, or it is idempotent), or fail it with `error`. */
  readonly sendOn: boolean;
  readonly error: GrainError | undefined;
}

const SEND_ON: StatusOutcome = { forgetPid: true, sendOn: true, error: undefined };
const fail = (error: GrainError, forgetPid = false): StatusOutcome => ({ forgetPid, sendOn: false, error });

/** Caller side: what a non-OK status (with its error info) means for `call`. */
export function outcomeOfStatus(status: Status, error: RemoteErrorInfo, call: Call): StatusOutcome {
  const { kind, identity, method } = call;
  switch (status) {
    case Status.NOT_HERE:
    case Status.SHUTTING_DOWN:
      return SEND_ON;
    case Status.EXPIRED:
      return fail(new GrainTimeoutError(kind, identity, method, call.timeoutMs, true));
    case Status.TIMEOUT:
      return fail(new GrainTimeoutError(kind, identity, method, call.timeoutMs, false));
    case Status.INVOCATION_FAILED:
      return fail(
        new GrainInvocationError(kind, identity, method, error.name, error.message, error.code === '' ? undefined : error.code, {
          origin: error.origin || undefined,
          // NOTE: from a peer: checked (status range, JSON, size) before anyone answers with it.
          http: httpOutcomeFromWire(error.httpStatus, error.httpResponse),
        }),
      );
    case Status.OVERLOADED:
      return fail(new GrainOverloadedError(kind, identity, Number(error.code) || 0));
    case Status.CALL_CYCLE:
      return fail(new CallCycleError(error.cycle));
    case Status.UNKNOWN_KIND:
      return fail(new UnknownKindError(kind));
    case Status.METHOD_NOT_CALLABLE:
      return fail(new MethodNotCallableError(kind, method));
    case Status.ACTIVATION_FAILED:
      return fail(new GrainActivationError(kind, identity, error.message));
    case Status.BAD_REQUEST:
      return fail(new InvalidGrainCallError(`Call ${kind}/${identity}.${method}() was refused by the member hosting it: ${error.message}. It never ran.`));
    case Status.TOO_LARGE:
      return fail(new MessageTooLargeError(kind, identity, method, false, error.message));
    case Status.UNAVAILABLE:
      // NOTE: the member could not serve it (e.g. cut off from its lookup): next time, resolve again.
      return fail(new ClusterUnavailableError(`Call ${kind}/${identity}.${method}(): ${error.message}`), true);
    case Status.IDENTITY_REFUSED:
      return fail(new GrainIdentityRefusedError(kind, identity));
    case Status.OUTCOME_UNKNOWN:
      return call.idempotent ? SEND_ON : fail(new OutcomeUnknownError(kind, identity, method, error.message));
    default:
      // NOTE: wire.ts refuses unknown statuses; OK never gets here.
      return fail(new ClusterUnavailableError(`Call ${kind}/${identity}.${method}(): unexpected response status ${String(status)}.`));
  }
}

/** Callee side: what a local outcome (an error a call was rejected with) becomes on the wire. */
export function responseForError(id: number, error: unknown): OutboundResponse {
  if (error instanceof GrainInvocationError) {
    const info: RemoteErrorInfo = { name: error.remoteName, message: error.remoteMessage, code: error.remoteCode ?? '', origin: error.origin, cycle: [] };
    // NOTE: left out when absent, so the response costs nothing more on the wire; a member
    // that does not know these fields skips them (protobuf), so no protocol version is needed.
    if (error.httpStatus !== undefined) info.httpStatus = error.httpStatus;
    if (error.httpResponse !== undefined) info.httpResponse = JSON.stringify(error.httpResponse);
    return { id, status: Status.INVOCATION_FAILED, error: info };
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

/** A refusal of the callee's own (before dispatch), as a response. */
export function refusal(id: number, status: Status, error: GrainError | Partial<RemoteErrorInfo>): OutboundResponse {
  return { id, status, error: toErrorInfo(error) };
}

/** The wire form of an error. */
export function toErrorInfo(error: GrainError | Partial<RemoteErrorInfo>): RemoteErrorInfo {
  if (error instanceof GrainError)
    return { name: error.name, message: error.message, code: error.code, origin: '', cycle: error instanceof CallCycleError ? [...error.cycle] : [] };
  return { name: error.name ?? 'Error', message: error.message ?? '', code: error.code ?? '', origin: error.origin ?? '', cycle: error.cycle ?? [] };
}
