import type { Call } from '../../actor/call.js';
import { type Codec, CodecError } from '../../remote/codec/codec.js';
import { type RemoteErrorInfo, Status } from '../../remote/wire.js';
import { type GrainError, GrainSerializationError, MessageTooLargeError } from '../errors.js';

/**
 * How a call's arguments and result cross the codec between members, in one place: the caller
 * side (remote-caller.ts), the callee side (remote-callee.ts) and `serializeLocalCalls`
 * (local-wire.ts) all go through these, so a call served here with the switch on fails
 * exactly as it would across members.
 */

/** Room left in a frame for the envelope around the arguments (or result). */
export const ENVELOPE_ALLOWANCE = 64 * 1024;

/** What the callee answers instead of a result or a served call: a status and the error it carries. */
export interface Refusal {
  readonly status: Status;
  readonly error: Partial<RemoteErrorInfo>;
}

/** The typed error for a codec failure on `call`'s arguments or result. */
export function codecFailure(call: Call, error: unknown, neverRan: boolean): GrainError {
  if (error instanceof CodecError && error.code === 'CODEC_TOO_LARGE')
    return new MessageTooLargeError(call.kind, call.identity, call.method, neverRan, error.message);
  return new GrainSerializationError(call.kind, call.identity, call.method, neverRan, error instanceof Error ? error.message : String(error));
}

/** The caller side: `call`'s arguments encoded, or the error its caller gets (the call never ran). */
export function encodeArguments(call: Call, codec: Codec, maxMessageSize: number): Uint8Array | GrainError {
  let bytes: Uint8Array;
  try {
    bytes = codec.encode(call.args);
  } catch (error) {
    return codecFailure(call, error, true);
  }
  const limit = maxMessageSize - ENVELOPE_ALLOWANCE;
  if (bytes.byteLength > limit) {
    return new MessageTooLargeError(call.kind, call.identity, call.method, true, `${bytes.byteLength} bytes of arguments; the limit is ${limit}`);
  }
  return bytes;
}

/** The callee side: the argument list, or the BAD_REQUEST it answers instead. */
export function decodeArguments(codec: Codec, bytes: Uint8Array): unknown[] | Refusal {
  let args: unknown;
  try {
    args = codec.decode(bytes);
  } catch (error) {
    return { status: Status.BAD_REQUEST, error: { name: 'CodecError', message: `undecodable arguments: ${(error as Error).message}` } };
  }
  if (!Array.isArray(args)) return { status: Status.BAD_REQUEST, error: { name: 'CodecError', message: 'the arguments are not a list' } };
  return args;
}

/** The call a result answers, named in the error when it cannot be sent (`kind/identity.method`). */
export interface ResultOrigin {
  readonly kind: string;
  readonly identity: string;
  readonly method: string;
}

/**
 * The callee side: a turn's result encoded (empty for undefined), or what it answers instead.
 * NOTE: `from` is the call itself; its name is only made for an error (not per result).
 */
export function encodeResult(codec: Codec, maxMessageSize: number, value: unknown, from: ResultOrigin): Uint8Array | Refusal {
  if (value === undefined) return EMPTY;
  const limit = maxMessageSize - ENVELOPE_ALLOWANCE;
  let bytes: Uint8Array;
  try {
    bytes = codec.encode(value);
  } catch (error) {
    if (error instanceof CodecError && error.code === 'CODEC_TOO_LARGE')
      return { status: Status.TOO_LARGE, error: { name: 'MessageTooLargeError', message: error.message } };
    return {
      status: Status.INVOCATION_FAILED,
      error: {
        name: 'GrainSerializationError',
        message: `the result cannot be sent between members: ${(error as Error).message}`,
        code: 'GRAIN_SERIALIZATION',
        origin: `${from.kind}/${from.identity}.${from.method}`,
      },
    };
  }
  if (bytes.byteLength > limit)
    return { status: Status.TOO_LARGE, error: { name: 'MessageTooLargeError', message: `${bytes.byteLength} bytes of result; the limit is ${limit}` } };
  return bytes;
}

/** The caller side: a result's bytes decoded (empty bytes are undefined), or the error its caller gets (the call ran). */
export function decodeResult(call: Call, codec: Codec, bytes: Uint8Array): { value: unknown } | GrainError {
  if (bytes.byteLength === 0) return { value: undefined };
  try {
    return { value: codec.decode(bytes) };
  } catch (error) {
    return codecFailure(call, error, false);
  }
}

const EMPTY = new Uint8Array(0);
